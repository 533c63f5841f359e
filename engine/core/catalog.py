"""The message catalog: every diagnostic's text in English and Chinese, keyed by code.

A data table, kept apart from the code that renders it (:mod:`engine.core.i18n`). Editing a
translation touches only this file; a test checks both languages carry the same parameters.
"""

from __future__ import annotations

# key -> (English, Chinese); named parameters in braces, the same set in both
CATALOG: dict[str, tuple[str, str]] = {
    # --- reading the file 读取文件 ---------------------------------------------------------
    "PB0001": ("not valid YAML: {problem}{context}", "不是合法的 YAML:{problem}{context}"),
    "PB0001.hint": (
        "check indentation (spaces, not tabs) and that ':' is followed by a space",
        "请检查缩进(只能用空格,不能用制表符),以及冒号后面是否有空格",
    ),
    "PB0001.tabs": (
        "YAML indentation must use spaces; replace the tab characters with spaces",
        "YAML 缩进只能用空格;请把制表符换成空格",
    ),
    "PB0002": (
        "duplicate key '{key}' (first at line {line}); YAML would silently keep only the last one",
        "重复的键 '{key}'(第一次出现在第 {line} 行);YAML 会悄悄只保留后一个",
    ),
    "PB0002.hint": ("remove one of them or merge their contents", "删除其中一个,或合并两处的内容"),
    "PB0003.several": (
        "one playbook per file: this file holds several YAML documents ('---')",
        "一个文件只写一个剧本:此文件含有多个 YAML 文档('---')",
    ),
    "PB0003.empty": ("the file is empty", "文件是空的"),
    "PB0003.playbook": (
        "a playbook is a mapping of keys (id, title, trigger, …)",
        "剧本应是键值映射(id、title、trigger 等)",
    ),
    "PB0003.segment": (
        "a segment is a mapping: id, title, condition",
        "命名客群应是键值映射:id、title、condition",
    ),
    "PB0004": ("'{raw}' is read as {value} in YAML", "YAML 会把 '{raw}' 读成 {value}"),
    "PB0004.hint": (
        'write {value} for a yes/no value, or "{raw}" for text',
        '表示是/否请写 {value};表示文字请写 "{raw}"',
    ),
    "PB0005": (
        "'{raw}' is read as the octal number {value} in YAML",
        "YAML 会把 '{raw}' 读成八进制数 {value}",
    ),
    "PB0005.hint": (
        'write "{raw}" in quotes if it is a code, or drop the leading zero',
        '如果是编号请加引号写成 "{raw}",否则去掉前导零',
    ),
    "PB0006": (
        "'{raw}' is read as the base-60 number {value} in YAML",
        "YAML 会把 '{raw}' 读成六十进制数 {value}",
    ),
    "PB0006.hint": ('write "{raw}" in quotes', '请加引号写成 "{raw}"'),
    "PB0007": ("file is not UTF-8 text ({problem})", "文件不是 UTF-8 文本({problem})"),
    "PB0007.hint": ("save the file as UTF-8", "请把文件另存为 UTF-8 编码"),
    "PB0013": (
        "the file nests more than {limit} levels deep",
        "文件嵌套超过 {limit} 层",
    ),
    "PB0013.python": ("the file nests too deeply to check", "文件嵌套过深,无法检查"),
    "PB0013.hint": (
        "a playbook needs a few levels; split deep conditions into named segments",
        "剧本只需要几层嵌套;较深的条件请拆成命名客群(segment)",
    ),
    "PB0008": ("merge keys ('<<') are not supported", "不支持合并键('<<')"),
    "PB0009": ("a key must be plain text", "键必须是文字"),
    "PB0010": ("no such file or folder", "文件或目录不存在"),
    "PB0011": (
        "file is {size} bytes; a playbook is at most {limit}",
        "文件有 {size} 字节;剧本最大 {limit} 字节",
    ),
    "PB0011.hint": (
        "is this the right file? split large audiences into named segments",
        "是不是选错了文件?过大的目标客户条件请拆成命名客群",
    ),
    "PB0012": (
        "anchors and aliases (&name / *name) of mappings and lists are not supported",
        "不支持映射和列表的锚点与别名(&name / *name)",
    ),
    "PB0012.hint": (
        "repeat the few lines, or move a shared audience into a named segment",
        "请直接重复这几行,或把共用的目标客户条件移到命名客群",
    ),
    # --- structure 结构 ---------------------------------------------------------------------
    "PB0102.depth": (
        "conditions nest more than {limit} levels deep (all / any / not)",
        "条件嵌套超过 {limit} 层(all / any / not)",
    ),
    "PB0099": (
        "this file could not be checked ({problem}); it is left out, the others are not "
        "affected. Please report it with the file",
        "无法检查此文件({problem});已跳过此文件,其他文件不受影响。请连同文件一起报告此问题",
    ),
    "PB0100": ("missing required key '{key}'{where}", "缺少必填的键 '{key}'{where}"),
    "PB0100.in": (" in {path}", "(位于 {path})"),
    "PB0101": ("unknown key '{key}'", "未知的键 '{key}'"),
    "PB0101.in": ("unknown key '{key}' in {what}", "{what} 中有未知的键 '{key}'"),
    "PB0101.operator": (
        "unknown operator '{op}'; expected one of {allowed}",
        "未知的运算符 '{op}';可用:{allowed}",
    ),
    "PB0102": ("expected {expected}, found {found}", "应为{expected},实际是{found}"),
    "PB0102.condition": (
        "expected a condition: a field name, or all / any / not",
        "应为一个条件:字段名,或 all / any / not",
    ),
    "PB0102.condition.hint": (
        "for example:  tier: {{in: [vip, private]}}",
        "例如:  tier: {{in: [vip, private]}}",
    ),
    "PB0102.list": ("expected a non-empty list of conditions", "应为非空的条件列表"),
    "PB0102.list.hint": ("start each with '- '", "每一项以 '- ' 开头"),
    "PB0102.segment": ("'segment' takes a segment id", "'segment' 后应写命名客群的 id"),
    "PB0102.one_operator": (
        "'{name}' needs exactly one operator, found {count}",
        "'{name}' 只能有一个运算符,实际有 {count} 个",
    ),
    "PB0102.one_operator.hint": (
        "combine several tests with all: [...]",
        "多个条件请用 all: [...] 组合",
    ),
    "PB0102.one_of": (
        "{what} takes a mapping with one of: {keys}",
        "{what} 应为只含以下之一的映射:{keys}",
    ),
    "PB0102.days_before": (
        "days_before takes {{festival: …, days: N}}",
        "days_before 的写法是 {{festival: …, days: N}}",
    ),
    "PB0103": (
        "'{value}' is not allowed here; expected one of: {options}",
        "此处不允许 '{value}';可选:{options}",
    ),
    "PB0104": (
        "id '{id}' may use only lower-case letters, digits and '-'",
        "id '{id}' 只能使用小写字母、数字和 '-'",
    ),
    "PB0104.segment": (
        "segment id '{id}' may use only lower-case letters, digits and '-'",
        "命名客群 id '{id}' 只能使用小写字母、数字和 '-'",
    ),
    "PB0105": (
        "each action is one item with one kind: {kinds}",
        "每个动作是一项,且只写一种类型:{kinds}",
    ),
    "PB0105.hint": ("start a new '- ' item for each action", "每个动作另起一个 '- ' 项"),
    "PB0106": ("{detail}", "不符合剧本结构:{detail}"),
    # --- meaning 含义 -----------------------------------------------------------------------
    "PB0107": ("unknown {what} '{name}'", "未知{what} '{name}'"),
    "PB0107.hint": (
        "fields are listed in schemas/data_dictionary.yaml",
        "可用字段见 schemas/data_dictionary.yaml",
    ),
    "PB0108": (
        "operator '{op}' does not fit '{name}' ({label}), a {type} field",
        "运算符 '{op}' 不适用于 '{name}'({label}),它是 {type} 类型的字段",
    ),
    "PB0108.hint": (
        "operators for a {type} field: {fitting}",
        "{type} 类型字段可用的运算符:{fitting}",
    ),
    "PB0109.bool": ("{what} takes true or false", "{what} 只能是 true 或 false"),
    "PB0109.whole_days": (
        "'{name}' is a date, so the duration must be whole days",
        "'{name}' 是日期字段,时长必须是整天",
    ),
    "PB0109.list": ("'{op}' takes a non-empty list", "'{op}' 需要一个非空列表"),
    "PB0109.between": ("'between' takes a list of two values", "'between' 需要两个值的列表"),
    "PB0109.between_order": (
        "'between' needs low <= high, got [{low}, {high}]",
        "'between' 要求下限 <= 上限,实际是 [{low}, {high}]",
    ),
    "PB0109.contains": ("'contains' takes a text", "'contains' 需要一段文字"),
    "PB0109.text": ("'{name}' takes text", "'{name}' 应为文字"),
    "PB0109.enum": (
        "'{value}' is not a value of '{name}' ({label})",
        "'{value}' 不是 '{name}'({label})的可选值",
    ),
    "PB0109.enum.hint": ("{guess}allowed: {choices}", "{guess}可选:{choices}"),
    "PB0109.integer": ("'{name}' takes a whole number", "'{name}' 应为整数"),
    "PB0109.number": ("'{name}' takes a number", "'{name}' 应为数字"),
    "PB0109.number.hint": ("write 500000, not 50万", "请写 500000,不要写 50万"),
    "PB0109.date": ("'{name}' takes a date", "'{name}' 应为日期"),
    "PB0109.datetime": ("'{name}' takes a date and time", "'{name}' 应为日期和时间"),
    "PB0109.compare": ("'{name}' cannot be compared", "'{name}' 不能比较"),
    "PB0109.days": ("{what} takes a whole number of days", "{what} 应为整数天数"),
    "PB0109.month_day": ("'{value}' is not a month and day", "'{value}' 不是月-日"),
    "PB0109.month_day.hint": (
        "MM-DD, or YYYY-MM-DD for one year only",
        "写 MM-DD;只限某一年时写 YYYY-MM-DD",
    ),
    "PB0109.not_date": ("'{value}' is not a date", "'{value}' 不是有效日期"),
    "PB0109.over_days": (
        "over must be whole days: the history is dated",
        "over 必须是整天:历史数据按日期记录",
    ),
    "PB0110": ("'{value}' is not a duration", "'{value}' 不是时长"),
    "PB0110.hint": (
        "write a number and a unit: 30d, 2w, 12h, 90min",
        "请写数字加单位:30d、2w、12h、90min",
    ),
    "PB0110.expected": (
        "expected a duration such as {examples}, got {value}",
        "应为时长(如 {examples}),实际是 {value}",
    ),
    "PB0110.unit": (
        "'{value}' is not a duration; write a number and a unit: {examples}",
        "'{value}' 不是时长;请写数字加单位:{examples}",
    ),
    "PB0110.zero": (
        "'{value}' is zero; a duration must be positive",
        "'{value}' 为零;时长必须大于零",
    ),
    "PB0110.deadline": (
        "'{value}' is not a deadline; write calendar time ({examples}) or business days"
        " ('3 workdays')",
        "'{value}' 不是时限;请写日历时间({examples})或工作日('3 workdays' 或 '3个工作日')",
    ),
    "PB0110.workdays": (
        "'{value}': a number of workdays from 1 to {most}",
        "'{value}':工作日数应在 1 到 {most} 之间",
    ),
    "PB0110.long": (
        "'{value}' is longer than {days} days (10 years); is it a typo?",
        "'{value}' 超过 {days} 天(10年);是否写错了?",
    ),
    "PB0111": ("'{cron}' is not a cron schedule", "'{cron}' 不是 cron 时间表"),
    "PB0111.hint": (
        "five fields: minute hour day-of-month month weekday, "
        "e.g. '0 9 * * 1-5' = 09:00 on Monday to Friday",
        "五段:分 时 日 月 星期,例如 '0 9 * * 1-5' 表示周一至周五 09:00",
    ),
    "PB0112": ("unknown segment '{name}'", "未知的命名客群 '{name}'"),
    "PB0112.no_folder": ("no segments/ folder", "没有 segments/ 目录"),
    "PB0112.hint": (
        "segments are files in {folder}/: {names}",
        "命名客群是 {folder}/ 下的文件:{names}",
    ),
    "PB0113": (
        "segments refer to each other in a loop: {loop}",
        "命名客群之间循环引用:{loop}",
    ),
    "PB0113.hint": (
        "a segment cannot use itself, directly or through others",
        "命名客群不能直接或间接引用自己",
    ),
    "PB0114": ("unknown festival '{name}'", "未知的节日 '{name}'"),
    "PB0114.hint": (
        "{guess}known: {known}; or a date: {{lunar: 08-15}}",
        "{guess}可用:{known};或写日期:{{lunar: 08-15}}",
    ),
    "PB0115.short": ("{what} is {value}: a {kind} window", "{what} 为 {value}:{kind}"),
    "PB0115.zero": ("zero or negative", "窗口为零或负数"),
    "PB0115.too_short": ("too short", "窗口太短"),
    "PB0115.short.hint": ("write {low} or more", "请写 {low} 或更大"),
    "PB0115.long": ("{what} is {value}, more than {high}", "{what} 为 {value},超过 {high}"),
    "PB0116": (
        "lunar date '{value}' does not exist",
        "农历日期 '{value}' 不存在",
    ),
    "PB0116.hint": ("lunar months are 1-12, days 1-30", "农历月份为 1-12,日为 1-30"),
    "PB0116.why": (
        "lunar date '{value}' does not exist: {why}",
        "农历日期 '{value}' 不存在:{why}",
    ),
    "PB0116.month": (
        "lunar month {month} of {year} has {length} days",
        "{year} 年农历 {month} 月只有 {length} 天",
    ),
    "PB0116.range": ("lunar years run {first}-{last}", "农历年份范围为 {first}-{last}"),
    "PB0117.columns": (
        "{aggregate} takes true or the columns to match",
        "{aggregate} 应为 true 或要匹配的列",
    ),
    "PB0117.columns.hint": ("columns of {name}: {columns}", "{name} 的列:{columns}"),
    "PB0117.mapping": ("{aggregate} takes a mapping", "{aggregate} 应为映射"),
    "PB0117.of": (
        "{aggregate} needs 'of': a column of {name} to aggregate",
        "{aggregate} 需要 'of':{name} 中要汇总的列",
    ),
    "PB0117.of.hint": ("columns that fit: {columns}", "可用的列:{columns}"),
    "PB0117.comparison": ("{aggregate} needs a comparison", "{aggregate} 需要一个比较条件"),
    "PB0117.change": (
        "'{name}' takes over and one of percent / amount",
        "'{name}' 需要 over,以及 percent / amount 之一",
    ),
    "PB0117.measure": ("{measure} takes a comparison", "{measure} 应为比较条件"),
    "PB0118.value": ("anniversary takes true or a mapping", "anniversary 应为 true 或映射"),
    "PB0118.calendar": (
        "calendar '{value}' is not solar, lunar or customer",
        "历法 '{value}' 不是 solar、lunar 或 customer",
    ),
    "PB0118.no_flag": (
        "'{name}' has no per-customer calendar flag",
        "'{name}' 没有按客户区分的历法标志",
    ),
    "PB0118.no_flag.hint": (
        "the data dictionary sets calendar_field on such date fields",
        "需在数据字典中为该日期字段设置 calendar_field",
    ),
    "PB0118.years": ("years takes a non-empty list", "years 需要非空列表"),
    "PB0118.both": ("write either years or every, not both", "years 和 every 只能写一个"),
    "PB0119": ("segment '{name}' has errors", "命名客群 '{name}' 有错误"),
    "PB0119.hint": ("fix {path} first", "请先修正 {path}"),
    # --- templates 模板 ---------------------------------------------------------------------
    "PB0120": ("template '{name}' not found in {folder}", "在 {folder} 中找不到模板 '{name}'"),
    "PB0120.include": (
        "template '{name}' (used by '{by}') not found in {folder}",
        "在 {folder} 中找不到模板 '{name}'(被 '{by}' 引用)",
    ),
    "PB0120.computed": (
        "'{by}' includes, imports or extends a template whose name is computed; write the "
        "file name as text",
        "'{by}' 引用的模板名是计算出来的;请直接写出文件名",
    ),
    "PB0121": ("template syntax error: {problem}", "模板语法错误:{problem}"),
    "PB0122": ("template uses an unknown variable: {problem}", "模板使用了未知变量:{problem}"),
    "PB0122.hint": (
        "variables: customer.<field of the data dictionary>, playbook, bank, today, now; "
        "in event playbooks also event.<field of the event>",
        "可用变量:customer.<数据字典中的字段>、playbook、bank、today、now;"
        "事件剧本中还有 event.<事件的字段>",
    ),
    "PB0122.field": (
        "'{name}' is not a field of the customer, nor of a related row",
        "'{name}' 不是客户的字段,也不是相关记录的字段",
    ),
    "PB0122.event": (
        "template uses an unknown variable: event '{type}' has no field '{name}'",
        "模板使用了未知变量:事件 '{type}' 没有字段 '{name}'",
    ),
    "PB0122.event.hint": ("the event carries: {known}", "该事件包含:{known}"),
    "PB0122.event.guess": (
        "did you mean '{name}'? the event carries: {known}",
        "您是不是想写 '{name}'?该事件包含:{known}",
    ),
    "PB0122.label": ("label: unknown field '{name}'", "label:未知字段 '{name}'"),
    "PB0123": ("template not allowed: {problem}", "模板不允许这样做:{problem}"),
    "PB0124": ("template failed: {problem}", "模板渲染失败:{problem}"),
    "PB0125": (
        "SMS is {length} characters with signature and opt-out: {parts} parts, "
        "over the budget of {budget}",
        "短信加签名和退订语共 {length} 个字,需 {parts} 条,超过上限 {budget} 条",
    ),
    "PB0125.hint": (
        "shorten the template or raise max_segments",
        "请缩短模板,或调高 max_segments",
    ),
    "PB0126": (
        "template '{name}' must be a file inside {folder}/",
        "模板 '{name}' 必须是 {folder}/ 中的文件",
    ),
    "PB0126.hint": (
        "write the file name relative to templates/, without '..' or a leading '/'",
        "请写相对于 templates/ 的文件名,不要用 '..' 或以 '/' 开头",
    ),
    "PB0127": (
        "e-mail subject is {length} characters; at most {limit}",
        "邮件主题有 {length} 个字;最多 {limit} 个",
    ),
    "PB0127.hint": ("shorten the subject", "请缩短主题"),
    "PB0128": (
        "'event' is only available in event playbooks: this playbook runs on a schedule, "
        "there is no event to show",
        "'event' 只能用于事件剧本:本剧本按计划运行,没有可显示的事件",
    ),
    "PB0128.hint": (
        "use trigger: {{event: …}} for a playbook that acts on an event, or take event.… out "
        "of the template",
        "要对事件做出反应请用 trigger: {{event: …}},否则请从模板中去掉 event.…",
    ),
    "PB0129": ("template is too costly: {what}", "模板开销过大:{what}"),
    "PB0129.recursion": ("a macro calls itself too deeply", "宏递归调用过深"),
    "PB0129.hint": (
        "a template writes one customer's message: no large loops, repetition or recursion",
        "模板只为一位客户生成一条消息:请不要用大循环、大量重复或递归",
    ),
    "PB0132": (
        "the {what} is {length} characters once rendered; at most {limit}",
        "{what}渲染后有 {length} 个字;最多 {limit} 个",
    ),
    "PB0132.hint": (
        "shorten the text: it is read on a phone",
        "请缩短文字:它会在手机上阅读",
    ),
    "budget.title": ("task title", "任务标题"),
    "budget.body": ("text", "正文"),
    "budget.email_body": ("e-mail body", "邮件正文"),
    "budget.subject": ("e-mail subject", "邮件主题"),
    "budget.wecom": ("WeCom message", "企业微信消息"),
    "template.at": ("{message} ({where})", "{message}({where})"),
    "template.join": ("{first}{second}", "{first}{second}"),
    # --- across files 跨文件 ----------------------------------------------------------------
    "PB0130": (
        "playbook id '{id}' is already used by {first}",
        "剧本 id '{id}' 已被 {first} 使用",
    ),
    "PB0130.hint": ("every playbook needs its own id", "每个剧本需要自己的 id"),
    "PB0131": (
        "segment id '{id}' is already used by {first}",
        "命名客群 id '{id}' 已被 {first} 使用",
    ),
    "PB0131.hint": ("every segment needs its own id", "每个命名客群需要自己的 id"),
    # --- actions 动作 -----------------------------------------------------------------------
    "PB0140": (
        "no webhook endpoint named '{name}' in {file}",
        "{file} 中没有名为 '{name}' 的推送端点",
    ),
    "PB0140.hint": (
        "configured: {known}; IT adds endpoints there",
        "已配置:{known};新端点由 IT 在那里添加",
    ),
    "PB0141": (
        "the data dictionary does not say who the customer's {role} is",
        "数据字典没有说明客户的 {role} 是谁",
    ),
    "PB0141.hint": (
        "add '{role}: <field>' under assignees in schemas/data_dictionary.yaml",
        "请在 schemas/data_dictionary.yaml 的 assignees 下添加 '{role}: <字段>'",
    ),
    "PB0142": (
        "a task goes to a person (assignee) or a team queue (queue), not both",
        "任务要么派给个人(assignee),要么派给团队队列(queue),不能同时写",
    ),
    "PB0142.hint": ("remove one of them", "删除其中一个"),
    "PB0143": ("a tag action either adds or removes one tag", "标签动作一次只能添加或移除一个标签"),
    "PB0143.hint": (
        "write '- tag: {{add: 已关怀}}' or '- tag: {{remove: 待回访}}', one per item",
        "写 '- tag: {{add: 已关怀}}' 或 '- tag: {{remove: 待回访}}',每项一个",
    ),
    # --- event triggers 事件触发 ------------------------------------------------------------
    "PB0160": (
        "a trigger has either 'schedule' or 'event', not both",
        "触发条件只能有 'schedule' 或 'event' 之一,不能同时写",
    ),
    "PB0160.hint": (
        "a scheduled playbook runs over the customer store at set times; an event playbook "
        "runs when an event arrives. Make two playbooks if you need both",
        "定时剧本在固定时间扫描客户库;事件剧本在事件到达时执行。两者都需要时请写两个剧本",
    ),
    "PB0161": (
        "use only one of {keys} in a trigger (found {found})",
        "触发条件中只能使用 {keys} 之一(实际有 {found})",
    ),
    "PB0161.hint": (
        "a trigger waits for one pattern; make one playbook per pattern",
        "一个触发条件只等待一种模式;每种模式写一个剧本",
    ),
    "PB0162": (
        "count.at_least must be between 2 and {max}, found {value}",
        "count.at_least 必须在 2 到 {max} 之间,实际是 {value}",
    ),
    "PB0162.hint": ("for a single event leave 'count' out", "单个事件请不要写 'count'"),
    "PB0163": ("event '{types}' has no field '{name}'", "事件 '{types}' 没有字段 '{name}'"),
    "PB0163.hint": ("{guess}'{types}' carries: {fields}", "{guess}'{types}' 的字段:{fields}"),
    "PB0163.carriers": ("; '{name}' is a field of: {carriers}", ";含有 '{name}' 的事件:{carriers}"),
    "PB0164": ("'{op}' does not apply to {name} ({type})", "'{op}' 不适用于 {name}({type})"),
    "PB0164.hint": ("for {name} use: {allowed}", "{name} 可用:{allowed}"),
    "PB0165": (
        "'{op}' compares with the first event, but this is the first event",
        "'{op}' 是与第一个事件比较的,但这里就是第一个事件",
    ),
    "PB0165.hint": (
        "use it under 'then' or 'then_not', e.g. amount: {{gte_ratio: 0.8}}",
        "请在 'then' 或 'then_not' 下使用,例如 amount: {{gte_ratio: 0.8}}",
    ),
    "PB0166.list": ("'{op}' takes a non-empty list of values", "'{op}' 需要非空的值列表"),
    "PB0166.between": (
        "'between' takes two values: [low, high]",
        "'between' 需要两个值:[下限, 上限]",
    ),
    "PB0166.between_order": (
        "'between' needs low ≤ high, found [{low}, {high}]",
        "'between' 要求下限 ≤ 上限,实际是 [{low}, {high}]",
    ),
    "PB0166.ratio": (
        "'{op}' takes a positive number such as 0.8, found {value}",
        "'{op}' 需要正数(如 0.8),实际是 {value}",
    ),
    "PB0166.number": ("{name} is a number; found {value}", "{name} 是数字;实际是 {value}"),
    "PB0166.text": ("{name} is text; found {value}", "{name} 是文字;实际是 {value}"),
    "PB0166.text.hint": ("quote it", "请加引号"),
    "PB0166.enum": (
        "'{value}' is not a {name}; expected one of: {options}",
        "'{value}' 不是有效的 {name};可选:{options}",
    ),
    "PB0167": (
        "a trigger needs 'schedule' (a time) or 'event' (an event type)",
        "触发条件需要 'schedule'(时间)或 'event'(事件类型)",
    ),
    "PB0167.hint": (
        'e.g. trigger: {{schedule: "0 9 * * 1-5"}} or trigger: {{event: withdrawal}}',
        '例如 trigger: {{schedule: "0 9 * * 1-5"}} 或 trigger: {{event: withdrawal}}',
    ),
    # --- holiday calendar files (config/calendar/CN-YYYY.yaml) 节假日日历文件 -----------------
    "E0410.name": (
        "'{name}' is not a calendar file name: write CN-YYYY.yaml, one file per year",
        "'{name}' 不是日历文件名:请写成 CN-YYYY.yaml,每年一个文件",
    ),
    "E0410.year": (
        "the year {year} does not match the file name's {file}",
        "年份 {year} 与文件名中的 {file} 不一致",
    ),
    "E0410.date": (
        "'{value}' is not a date; write YYYY-MM-DD",
        "'{value}' 不是日期;请写成 YYYY-MM-DD",
    ),
    "E0410.other_year": (
        "{day} is not in {year}: put it in the file of its own year",
        "{day} 不在 {year} 年内:请写在它所在年份的文件中",
    ),
    "E0410.order": ("'to' is before 'from'", "'to' 早于 'from'"),
    "E0410.long": (
        "a holiday of {days} days is longer than any notice gave: check the dates",
        "{days} 天的假期比以往任何通知都长:请核对日期",
    ),
    "E0410.twice": ("{day} is already a day of {name}", "{day} 已属于 {name} 假期"),
    "E0410.weekday": (
        "{day} is a {weekday}: a make-up workday (调休上班) is a Saturday or Sunday",
        "{day} 是{weekday}:调休上班日应是周六或周日",
    ),
    "E0410.inside": (
        "{day} is a day of {name}: it cannot also be a make-up workday",
        "{day} 属于 {name} 假期,不能同时是调休上班日",
    ),
    # --- upgrading a store 升级数据库 ---------------------------------------------------------
    "E0512": (
        "the store has engine tables but is neither empty nor made by release 2026-11, so "
        "init-db does not know which schema it has and changed nothing: {problems}",
        "数据库中已有引擎表,但既不是空库,也不是 2026-11 版本建立的库,init-db 无法判断其结构,"
        "未做任何修改:{problems}",
    ),
    "E0512.absent": (
        "table(s) {absent} missing beside {there}",
        "有 {there},却缺少表 {absent}",
    ),
    "E0512.lacking": ("{table} lacks column(s) {columns}", "表 {table} 缺少列 {columns}"),
    "E0512.extra": (
        "{table} has column(s) {columns} the engine never made",
        "表 {table} 有引擎从未建立的列 {columns}",
    ),
    "E0512.hint": (
        "check --db names the engine's store; a table of the bank's with an engine table's name "
        "must be renamed, and a store of a release before 2026-11 upgraded by 2026-11 first",
        "请确认 --db 指向引擎的数据库;银行自己的表若与引擎表同名须改名;"
        "2026-11 之前版本的库须先用 2026-11 版本升级",
    ),
    # --- the data dictionary 数据字典 --------------------------------------------------------
    "E0520": (
        "{field}: the SQL names the parameter ':{param}', which the engine does not bind; "
        "it binds :as_of (the run's local date) and :as_of_time (its local date and time)",
        "{field}:SQL 中的参数 ':{param}' 引擎不会绑定;可用的参数只有 :as_of(运行日期)"
        "和 :as_of_time(运行时刻)",
    ),
    "E0520.hint": (
        "use :as_of for the run date (e.g. s.day <= :as_of); write \\: for a colon that is "
        "not a parameter",
        "运行日期请写 :as_of(例如 s.day <= :as_of);不是参数的冒号请写成 \\:",
    ),
    # --- the messages section of config/policy.yaml 短信与渠道规则 ---------------------------
    "E0420": (
        "'{value}' is not an SMS signature: write the registered name inside 【】, 2-12 characters",
        "'{value}' 不是短信签名:应为【】括起的已报备签名,2-12 个字",
    ),
    "E0420.hint": ('e.g. signature: "【示例银行】"', '例如 signature: "【示例银行】"'),
    "E0421": (
        "marketing {channel} messages need an opt-out text (opt_out)",
        "营销{channel}消息必须配置退订说明(opt_out)",
    ),
    "E0421.sms": (
        'MIIT rules require an easy opt-out: e.g. opt_out: "回复TD退订"',
        '工信部规定营销短信须提供便捷的退订方式,例如 opt_out: "回复TD退订"',
    ),
    "E0421.email": (
        'e.g. opt_out: "如不希望再收到此类邮件,请回复“退订”。"',
        '例如 opt_out: "如不希望再收到此类邮件,请回复“退订”。"',
    ),
    "E0422": (
        "the window {window} goes outside what the operator allows for {channel} "
        "{purpose} messages, {allowed}",
        "时段 {window} 超出了运营商允许的{channel} {purpose} 发送时段 {allowed}",
    ),
    "E0422.hint": (
        "narrow it to lie inside {allowed}, or change messages.{channel}.operator_window if "
        "the operator's rule changed",
        "请改在 {allowed} 之内;若运营商规则已变,请修改 messages.{channel}.operator_window",
    ),
    "config.window": ("'{value}' is not a time window", "'{value}' 不是时间段"),
    "config.window.order": ("'{value}' ends before it starts", "'{value}' 的结束时间早于开始时间"),
    "config.window.hint": (
        'write the allowed daytime window as HH:MM-HH:MM, e.g. "08:00-21:00"',
        '请写成 HH:MM-HH:MM 形式的白天时段,例如 "08:00-21:00"',
    ),
    # --- governance 剧本版本与审批 (docs/governance.md, E0630–E0659) -----------------------------
    "gov.no_file": (
        "the governance file is missing; the playbook commands need it",
        "缺少审批配置文件;剧本审批命令需要它",
    ),
    "gov.no_file.hint": (
        "copy config/governance.yaml from the engine's repository (enabled: false keeps "
        "today's behaviour for runs)",
        "请从引擎仓库复制 config/governance.yaml(enabled: false 时运行方式不变)",
    ),
    "gov.unknown_playbook": ("no valid playbook with id '{id}'", "没有 id 为 '{id}' 的有效剧本"),
    "gov.unknown_playbook.hint": ("known: {known}", "已有剧本:{known}"),
    "gov.invalid": (
        "the version does not validate: {problem}",
        "该版本未通过校验:{problem}",
    ),
    "gov.invalid.hint": (
        "fix the playbook and submit a new version; `validate` shows every error",
        "请修改剧本后提交新版本;`validate` 可列出全部错误",
    ),
    "gov.unknown_version": ("there is no version {number}", "没有第 {number} 版"),
    "gov.unknown_version.hint": (
        "`playbook versions ID` lists the versions",
        "`playbook versions ID` 可列出所有版本",
    ),
    "gov.wrong_state": (
        "the version is {state}; this step needs one that is {expected}",
        "该版本当前状态为 {state};此操作需要状态为 {expected} 的版本",
    ),
    "gov.wrong_state.hint": (
        "`playbook versions ID` shows each version's state",
        "`playbook versions ID` 可查看各版本状态",
    ),
    "gov.self_approval": (
        "{author} wrote this version and may not approve it (maker-checker)",
        "{author} 是该版本的作者,不能审批自己的版本(双人复核)",
    ),
    "gov.self_approval.hint": (
        "another approver must review it",
        "请由另一位审批人审核",
    ),
    "gov.not_allowed": (
        "{name} (role {role}) may not approve or change {category} playbooks",
        "{name}(角色 {role})无权审批或变更{category}类剧本",
    ),
    "gov.not_allowed.hint": (
        "approvers are set per category in {source}; use --as with an approver's account",
        "各类别的审批人在 {source} 中设置;请用 --as 指定有审批权的账号",
    ),
    "gov.already_approved": (
        "{name} has already approved or asked for this",
        "{name} 已经审批或申请过此操作",
    ),
    "gov.already_approved.hint": (
        "a second, different person must confirm",
        "需要另一位不同的人员确认",
    ),
    "gov.newer_live": (
        "the live version is now {live}, not the one this version was reviewed against",
        "当前上线版本已变为 {live},不是该版本审核时对照的版本",
    ),
    "gov.newer_live.hint": (
        "submit the change again so it is reviewed against what runs now",
        "请重新提交,使其与当前运行的版本对照审核",
    ),
    "gov.race_lost": (
        "someone else changed this playbook at the same moment; nothing was changed",
        "其他人同时变更了该剧本;本次未做任何修改",
    ),
    "gov.race_lost.hint": (
        "`playbook versions ID` shows what is live now",
        "`playbook versions ID` 可查看当前上线版本",
    ),
    "gov.unknown_account": (
        "no enabled console account '{name}'",
        "没有名为 '{name}' 的有效控制台账号",
    ),
    "gov.unknown_account.hint": ("`users list` shows the accounts", "`users list` 可列出账号"),
    "gov.shared_template": (
        "{path} is also used by the live version of {other}, with other text",
        "{path} 也被 {other} 的上线版本使用,且内容不同",
    ),
    "gov.shared_template.hint": (
        "give this playbook its own template, or change both through the workflow",
        "请为该剧本使用单独的模板,或通过审批流程同时修改两者",
    ),
    "gov.write_failed": (
        "the files could not be written: {problem}",
        "无法写入文件:{problem}",
    ),
    "gov.write_failed.hint": (
        "fix the folder's permissions or space, then run the same command again",
        "请检查文件夹权限或磁盘空间,然后重新执行同一命令",
    ),
    "gov.duplicate": (
        "these exact files are already a version ({state})",
        "完全相同的文件已是一个版本(状态 {state})",
    ),
    "gov.duplicate.hint": (
        "approve or reject that version instead",
        "请审批或驳回该版本",
    ),
    "gov.comment_needed": ("a rejection needs a comment", "驳回需要填写意见"),
    "gov.comment_needed.hint": (
        "say what to change: --comment TEXT",
        "请说明需要修改什么:--comment 意见",
    ),
    "gov.not_live": (
        "the playbook has no live version in that state (paused: {paused})",
        "该剧本没有处于该状态的上线版本(已暂停:{paused})",
    ),
    "gov.not_live.hint": (
        "`playbook versions ID` shows what is live",
        "`playbook versions ID` 可查看当前上线版本",
    ),
    "gov.no_change": (
        "the files are the live version {number}; there is nothing to submit",
        "文件与上线的第 {number} 版相同;没有可提交的变更",
    ),
    "gov.no_change.hint": ("edit the playbook first", "请先修改剧本"),
    "E0530": (
        "{field}: 'lookup' has no part '{part}'; it is {{table, key, by, column}}, with "
        "pick (and where) to choose one value among rows",
        "{field}:'lookup' 没有 '{part}' 这一项;它由 {{table, key, by, column}} 组成,"
        "在多行中取一个值时再加 pick(和 where)",
    ),
    "E0530.hint": ("did you mean '{near}'?", "是不是想写 '{near}'?"),
    "E0531": (
        "{field}: 'lookup' needs {missing}",
        "{field}:'lookup' 缺少 {missing}",
    ),
    "E0531.hint": (
        "write lookup: {{table: branches, key: id, by: branch_id, column: name}} (branches.name "
        "where branches.id = the customer's branch_id)",
        "写法:lookup: {{table: branches, key: id, by: branch_id, column: name}}"
        "(取 branches.id 等于客户 branch_id 的那一行的 branches.name)",
    ),
    "E0532": (
        "{field}: lookup {part} {value!r} is not a plain table or column name",
        "{field}:lookup 的 {part} {value!r} 不是一个简单的表名或列名",
    ),
    "E0532.hint": (
        "letters, digits and _ only, not starting with a digit; a computed value stays an "
        "'sql' field",
        "只能用字母、数字和下划线,且不以数字开头;需要计算的值请继续写成 'sql' 字段",
    ),
    "E0534": (
        "{field}: lookup pick {value!r} is neither min nor max",
        "{field}:lookup 的 pick {value!r} 既不是 min 也不是 max",
    ),
    "E0534.hint": (
        "pick: min keeps the smallest value of the column among the key's rows, pick: max the "
        "largest",
        "pick: min 取该键各行中此列的最小值,pick: max 取最大值",
    ),
    "E0535": (
        "{field}: lookup where: {problem}",
        "{field}:lookup 的 where:{problem}",
    ),
    "E0535.mapping": (
        "it is a mapping of column: value",
        "应为 列名: 值 的映射",
    ),
    "E0535.name": (
        "{name!r} is not a plain column name",
        "{name!r} 不是一个简单的列名",
    ),
    "E0535.value": (
        "{name} must equal one text, number or true/false, not {found}",
        "{name} 只能等于一个文字、数字或 true/false,不能是 {found}",
    ),
    "E0535.hint": (
        "write where: {{role: branch_leader}} (rows whose role is 'branch_leader'); quote a date "
        "or a code that looks like a number as the column holds it",
        "写法:where: {{role: branch_leader}}(role 为 'branch_leader' 的行);日期或形似数字的"
        "代码请按列中的写法加引号",
    ),
    "E0536": (
        "{field}: lookup 'where' needs 'pick': the rows it keeps may share a key",
        "{field}:lookup 写了 'where' 就需要 'pick':筛选后的多行可能共用一个键",
    ),
    "E0536.hint": (
        "add pick: min or pick: max to say which value the customer gets",
        "加上 pick: min 或 pick: max,说明客户取哪一个值",
    ),
    # --- shared hints and words 通用提示与词语 -----------------------------------------------
    "config.top": ("top level", "顶层"),
    "config.type": ("expected {expected}, got {got}", "应为{expected},实际是 {got}"),
    "valuetype.integer": ("a whole number", "整数"),
    "valuetype.number": ("a number", "数字"),
    "valuetype.string": ("text", "文字"),
    "valuetype.object": ("a mapping of keys", "键值映射"),
    "valuetype.array": ("a list", "列表"),
    "valuetype.boolean": ("true or false", "true 或 false"),
    "config.required": ("the key '{name}' is missing", "缺少键 '{name}'"),
    "config.unknown": (
        "unknown key '{name}'; allowed: {allowed}",
        "未知的键 '{name}';允许的键:{allowed}",
    ),
    "config.enum": ("{value} is not one of: {allowed}", "{value} 不是以下之一:{allowed}"),
    "config.duration": (
        "{value} is not a duration; write 30min, 4h, 1d or 2w",
        "{value} 不是时长;请写成 30min、4h、1d 或 2w",
    ),
    "config.minimum": (
        "{value} is below the least allowed, {minimum}",
        "{value} 小于最小值 {minimum}",
    ),
    "config.other": ("{problem}", "配置有误:{problem}"),
    "hint.did_you_mean": ("did you mean '{name}'?", "您是不是想写 '{name}'?"),
    "hint.did_you_mean_column": (
        "did you mean '{name}' ({label}, a column of {table})?",
        "您是不是想写 '{name}'({label},{table} 的列)?",
    ),
    "hint.did_you_mean_field": (
        "did you mean '{name}' ({label})?",
        "您是不是想写 '{name}'({label})?",
    ),
    # --- goals 效果目标 -----------------------------------------------------------------------
    "PB0180": ("a goal measures exactly one thing ({found})", "一个目标只衡量一件事({found})"),
    "PB0180.found": ("found {kinds}", "写了 {kinds}"),
    "PB0180.none": ("found none", "一个也没写"),
    "PB0180.hint": (
        "add one of: {kinds} — e.g. goal: {{within: 30d, activity_resumed: true}}",
        "请写其中一种:{kinds},例如 goal: {{within: 30d, activity_resumed: true}}",
    ),
    "PB0181.activity": ("activity_resumed takes true", "activity_resumed 只能写 true"),
    "PB0181.activity.hint": (
        "to measure something else, write the test under 'condition:'",
        "要衡量别的结果,请把条件写在 'condition:' 下",
    ),
    "PB0181.product": (
        "product_bought takes true (any product) or the product's columns",
        "product_bought 写 true(任意产品)或产品的列条件",
    ),
    "PB0181.product.hint": (
        "e.g. product_bought: {{product_type: wealth}}; columns: {columns}",
        "例如 product_bought: {{product_type: wealth}};可用的列:{columns}",
    ),
    "PB0181.percent": (
        "percent is a number above 0 (100 = back to the level at the action)",
        "percent 是大于 0 的数(100 = 回到执行时的水平)",
    ),
    "PB0181.aum": (
        "aum_recovered takes true or {{percent: N}}",
        "aum_recovered 写 true 或 {{percent: N}}",
    ),
    "PB0181.aum.hint": (
        "e.g. aum_recovered: {{percent: 110}} = 10% above the AUM at the action",
        "例如 aum_recovered: {{percent: 110}} = 比执行时的资产高 10%",
    ),
    "PB0182": (
        "goal '{kind}' needs {what} in the data dictionary",
        "目标 '{kind}' 需要数据字典里有 {what}",
    ),
    "PB0182.hint": (
        "map it in schemas/data_dictionary.yaml, or write the goal under 'condition:'",
        "请在 schemas/data_dictionary.yaml 中映射它,或把目标写在 'condition:' 下",
    ),
    # --- context rows for templates 模板可用的关联记录 ---------------------------------------
    "PB0190": (
        "'{source}' is not a related table of the data dictionary",
        "'{source}' 不是数据字典中的关联表",
    ),
    "PB0190.hint": ("related tables: {tables}", "可用的关联表:{tables}"),
    "PB0191": (
        "'{name}' is already a template variable; a context name cannot hide it",
        "'{name}' 已是模板变量;context 的名字不能与之重名",
    ),
    "PB0191.hint": (
        "pick another name, e.g. '{name}_rows'; taken: {taken}",
        "请换一个名字,例如 '{name}_rows';已占用:{taken}",
    ),
    "PB0192": (
        "cannot order by '{order}': {source} has no such column",
        "无法按 '{order}' 排序:{source} 没有这一列",
    ),
    "PB0192.hint": ("columns of {source}: {columns}", "{source} 的列:{columns}"),
    "PB0193": (
        "the template fails for a customer without {names} rows: {problem}",
        "客户没有 {names} 记录时模板出错:{problem}",
    ),
    "PB0193.hint": (
        "guard it: {{% if {name} %}}…{{% endif %}}, "
        "or loop: {{% for row in {name} %}}…{{% endfor %}}",
        "请加判断:{{% if {name} %}}…{{% endif %}},"
        "或用循环:{{% for row in {name} %}}…{{% endfor %}}",
    ),
    "hint.did_you_mean_then": ("did you mean '{name}'? ", "您是不是想写 '{name}'?"),
    "hint.allowed": ("allowed: {allowed}", "可用:{allowed}"),
    "hint.expected_one_of": ("expected one of {allowed}", "可用:{allowed}"),
    "hint.example": ("for example: {example}", "例如:{example}"),
    "word.field": ("field", "字段"),
    "word.at": ("at", "位置"),
    "word.see": ("see", "参见"),
    "summary.validate": (
        "{files} file(s): {valid} valid, {errors} error(s), {warnings} warning(s)",
        "{files} 个文件:{valid} 个有效,{errors} 个错误,{warnings} 个警告",
    ),
    "word.column": ("column", "列"),
    "word.none": ("none", "无"),
    "word.none_yet": ("none yet", "暂无"),
    "word.no_fields": ("no fields", "无字段"),
    "word.a_date": ("a date", "日期"),
    "type.string": ("text", "文字"),
    "type.integer": ("a whole number", "整数"),
    "type.number": ("a number", "数字"),
    "type.boolean": ("true or false", "true 或 false"),
    "type.array": ("a list", "列表"),
    "type.object": ("a mapping", "映射"),
    "type.or": ("{left} or {right}", "{left}或{right}"),
    "found.bool": ("true/false ({value})", "真假值({value})"),
    "found.number": ("a number ({value})", "数字({value})"),
    "found.text": ("text ('{value}')", "文字('{value}')"),
    "found.list": ("a list", "列表"),
    "found.mapping": ("a mapping", "映射"),
    "found.nothing": ("nothing", "空值"),
    "event.money": ("an amount", "金额"),
    "event.integer": ("a number", "数字"),
    "event.string": ("text", "文字"),
    "event.enum": ("a code", "代码"),
    # --- partitioned daemons (engine/store/partitions.py) 分区守护进程 -----------------------
    "E1040.format": (
        "--partition {value!r} is not k/K (two whole numbers, e.g. 2/4)",
        "--partition {value!r} 不是 k/K 的形式(两个整数,例如 2/4)",
    ),
    "E1040.range": (
        "--partition {value!r}: k must be between 1 and K, and K between 1 and {most} "
        "(got k={k}, K={count})",
        "--partition {value!r}:k 应在 1 到 K 之间,K 应在 1 到 {most} 之间(k={k},K={count})",
    ),
    "E1040.hint": (
        "start K daemons with --partition 1/K … K/K, the same K for all",
        "启动 K 个守护进程,分别用 --partition 1/K … K/K,K 须相同",
    ),
    "E1041": (
        "--partition {given} does not fit this database: its daemons split customers into "
        "{count} partitions",
        "--partition {given} 与本库不符:本库的守护进程把客户分为 {count} 个分区",
    ),
    "E1041.hint": (
        "use --partition k/{count}; to change the number, stop every daemon and empty the "
        "partition_scheme table",
        "请用 --partition k/{count};如要改分区数,先停止所有守护进程并清空 partition_scheme 表",
    ),
    "E1042": (
        "this database is run by partitioned daemons ({count} partitions): a daemon without "
        "--partition would act on every partition's customers",
        "本库由分区守护进程运行(共 {count} 个分区):不带 --partition 的守护进程会处理所有分区的客户",
    ),
    "E1042.hint": (
        "start it with --partition k/{count}, or stop every daemon and empty the "
        "partition_scheme table to run unpartitioned",
        "请加 --partition k/{count};如要不分区运行,先停止所有守护进程并清空 partition_scheme 表",
    ),
    "E1043": (
        "partition_column '{column}' is not a column of the customer table '{table}'",
        "partition_column '{column}' 不是客户表 '{table}' 的列",
    ),
    "E1043.hint": (
        "name a column of the customer table (e.g. branch_id), or remove partition_column "
        "to partition by the customer key",
        "请写客户表中的列(例如 branch_id),或删去 partition_column,按客户编号分区",
    ),
    "E1043.summary": (
        "the data dictionary's partition_column does not fit the database",
        "数据字典中的 partition_column 与数据库不符",
    ),
}
