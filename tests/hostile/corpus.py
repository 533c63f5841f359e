"""A corpus of hostile inputs, written for this project: what a careless or malicious editor,
a broken export or a hostile feed can put in front of the engine.

Each case is a file of a deployment (a playbook, a template) with the kind of harm it tries:

- ``escape``: a Jinja sandbox escape (the payload families of Jinja's own security advisories
  and the public SSTI cheat sheets: dunder walks to ``os``/``subprocess``, ``attr`` and format
  string tricks, ``self``/``cycler``/``lipsum`` globals, path traversal in includes);
- ``bomb``: a size, time or recursion bomb (repetition, ranges, widths, doubling, recursion);
- ``yaml``: a YAML trap (anchors, tags, octal and sexagesimal numbers, tabs, duplicate keys,
  encodings, nesting, several documents);
- ``sql``: an SQL payload in every place a value or a name can go;
- ``size``: an oversized field.

The corpus is data: the tests decide what must hold for every case.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- templates ---------------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__base__.__subclasses__() }}",
    "{{ [].__class__.__base__.__subclasses__() }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ {}.__class__.__base__.__subclasses__() }}",
    "{{ (1).__class__.__mro__[-1].__subclasses__() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__dict__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__.os.popen('id').read() }}",
    "{{ namespace.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ lipsum.__globals__.__builtins__.__import__('os').system('id') }}",
    "{{ range.__globals__ }}",
    "{{ config.items() }}",
    "{{ request.application.__globals__.__builtins__ }}",
    "{{ get_flashed_messages.__globals__ }}",
    "{{ url_for.__globals__['os'] }}",
    "{{ customer.__class__ }}",
    "{{ customer.__class__.__init__.__globals__ }}",
    "{{ bank.__class__.__mro__ }}",
    "{{ playbook.__dict__ }}",
    "{{ today.__class__.__module__ }}",
    "{{ now.__reduce_ex__(2) }}",
    "{{ now.__getattribute__('__class__') }}",
    "{{ '{0.__class__}'.format(customer) }}",
    "{{ '{0.__init__.__globals__}'.format(bank) }}",
    "{{ '{0.__class__.__mro__}'.format('') }}",
    "{{ '{a.__class__}'.format_map({'a': customer}) }}",
    "{{ '%s' % ''.__class__ }}",
    "{{ customer|attr('__class__') }}",
    "{{ ''|attr('__class__')|attr('__mro__') }}",
    "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ ''|attr('__cl'~'ass__') }}",
    "{{ ()|attr('__class__')|attr('__base__')|attr('__subclasses__')() }}",
    "{{ customer['__class__'] }}",
    "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{{ c }}{% endfor %}",
    "{% for c in [].__class__.__base__.__subclasses__() %}"
    "{% if c.__name__ == 'Popen' %}{{ c('id', shell=True) }}{% endif %}{% endfor %}",
    "{{ ''.__class__.__mro__[-1].__subclasses__()[40]('/etc/passwd').read() }}",
    "{% set x = ''.__class__ %}{{ x }}",
    "{% set g = self.__init__.__globals__ %}{{ g.os.environ }}",
    "{{ [].pop.__self__.__class__ }}",
    "{{ ''.join.__self__.__class__ }}",
    "{{ (1).__class__.__mro__ }}",
    "{{ customer.items.__self__.__class__ }}",
    "{{ ''.__doc__ }}",
    "{{ 'x'.__len__() }}",
    "{{ __builtins__ }}",
    "{{ __import__('os').system('id') }}",
    "{{ open('/etc/passwd').read() }}",
    "{{ eval('1+1') }}",
    "{{ exec('import os') }}",
    "{{ getattr(customer, '__class__') }}",
    "{{ globals() }}",
    "{{ locals() }}",
    "{{ environment }}",
    "{{ context }}",
    "{{ _ }}",
    "{% import 'os' as os %}{{ os }}",
    "{% include '/etc/passwd' %}",
    "{% include '../config/channels.yaml' %}",
    "{% include '../../../../etc/passwd' %}",
    "{% extends '../schemas/data_dictionary.yaml' %}",
    "{% from '../config/policy.yaml' import x %}{{ x }}",
    "{% include customer.name %}",
    "{% include ['missing_a.j2', 'missing_b.j2'] %}",
    "{% extends customer.tier ~ '.j2' %}",
    "{% include 'no_such_template.j2' %}",
]

BOMBS = [
    "{{ 'a' * 100000000 }}",
    "{{ 'ab' * 99999 }}",
    "{{ [1] * 100000000 }}",
    "{{ 100000000 * 'a' }}",
    "{{ (range(1000000000))|list|length }}",
    "{% for i in range(100000) %}{{ i }}{% endfor %}",
    "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "{% for i in range(5000) %}{% for j in range(5000) %}{{ j }}{% endfor %}{% endfor %}",
    "{{ 'a'|center(1000000000) }}",
    "{{ 'a'.zfill(1000000000) }}",
    "{{ 'a'.ljust(1000000000) }}",
    "{{ 'a'.rjust(1000000000) }}",
    "{{ 'a'.center(1000000000) }}",
    "{{ '\\t'.expandtabs(1000000000) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '%.999999999f' % 1 }}",
    "{{ '%*d' % (1000000000, 1) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '{:{}}'.format(1, 1000000000) }}",
    "{{ '{0:0999999999}'.format(1) }}",
    "{{ '%s'|format('a') * 100000000 }}",
    "{{ 'a'|indent(1000000000) }}",
    "{{ 'a b'|wordwrap(1000000000) }}",
    "{{ 'a'|truncate(1000000000) }}",
    "{{ [1, 2]|batch(1000000000)|list }}",
    "{{ 10 ** 1000 }}",
    "{{ 2 ** 1000000 }}",
    "{{ (10 ** 64) ** 64 }}",
    "{% set a = 10 ** 60 %}{% set b = a * a %}{% set c = b * b %}{% set d = c * c %}"
    "{% set e = d * d %}{% set f = e * e %}{% set g = f * f %}{{ g * g }}",
    "{% set s = 'a' * 10000 %}{{ s.replace('a', s) }}",
    "{% set s = 'a' * 10000 %}{{ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s }}",
    "{% set s = 'a' * 9000 %}{% set s = s ~ s %}{% set s = s ~ s %}{% set s = s ~ s %}"
    "{% set s = s ~ s %}{% set s = s ~ s %}{% set s = s ~ s %}{% set s = s ~ s %}{{ s|length }}",
    "{% macro f(s, n) %}{{ f(s ~ s, n - 1) if n else s|length }}{% endmacro %}{{ f('a', 60) }}",
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}",
    "{{ lipsum(100000) }}",
    "{{ namespace(a=1) }}",
    "{% set ns = namespace(s='a') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s|length }}",
    "{{ 1 / 0 }}",
    "{{ 1 // 0 }}",
    "{{ 1 % 0 }}",
    "{{ (2 ** 64) / 0.0 }}",
    "{{ customer.aum | wan | wan }}",
    "{{ 'x' | cn_date }}",
    "{{ customer.name | lunar_date }}",
    "{{ 'x' | label('no_such_field') }}",
    "{{ [] | first }}",
    "{{ none.x }}",
    "{{ customer.nmae }}",
    "{% if %}",
    "{{ unclosed",
    "{% for x in %}{% endfor %}",
    "{% endif %}",
    "{{ 'a' }}{% block b %}{% block b %}{% endblock %}{% endblock %}",
]


HARMLESS = [
    # look like attacks, are not: accepted, and must render nothing of the engine's insides
    "{{ customer.get('__class__') }}",
    "{{ 1e308 * 10 }}",
    "{% raw %}",
    "{{ 10 ** 10 ** 10 }}",  # (10 ** 10) ** 10: a 101-digit number
    "{{ range(10)|list }}",
    "{{ 'a' * 40 }}",
    "{{ customer.name ~ customer.name }}",
    "{{ '%05d' % 42 }}",
    "{{ '{:>8}'.format('x') }}",
    "{{ 'x'|center(40) }}",
    "{% for i in range(100) %}{% for j in range(90) %}{% endfor %}{% endfor %}ok",
    "{{ customer.items()|list|length }}",
]


def _wrap(body: str) -> list[str]:
    """The same payload where a renderer might not look: a branch, a macro, a filter chain."""
    return [
        f"{{% if true %}}{body}{{% endif %}}",
        f"{{% macro m() %}}{body}{{% endmacro %}}{{{{ m() }}}}",
        f"{{% filter upper %}}{body}{{% endfilter %}}",
    ]


TEMPLATES: list[tuple[str, str]] = (
    [("harmless", body) for body in HARMLESS]
    + [("escape", body) for body in ESCAPES]
    + [("bomb", body) for body in BOMBS]
    + [("escape", wrapped) for body in ESCAPES[:20] for wrapped in _wrap(body)]
    + [("bomb", wrapped) for body in BOMBS[:15] for wrapped in _wrap(body)]
)
"""(kind, template source): every one but the ``harmless`` must fail validation with a
located error; the harmless must validate and render nothing of the engine's insides."""

# --- playbooks ---------------------------------------------------------------------------------

HEAD = """id: {id}
title: 测试剧本
owner: 测试
enabled: true
category: marketing
trigger: {{schedule: "0 9 * * *"}}
"""
GOOD_AUDIENCE = "audience: {tier: {eq: vip}}\n"
GOOD_ACTION = "actions:\n  - tag: {add: 测试}\n"


@dataclass(frozen=True)
class Case:
    kind: str
    name: str
    text: str | bytes
    valid: bool = False  # harmless and allowed: must validate, and be harmless when run


def _pb(pid: str, audience: str = GOOD_AUDIENCE, actions: str = GOOD_ACTION) -> str:
    return HEAD.format(id=pid) + audience + actions


_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8)
)

YAML_TRAPS = [
    Case("yaml", "billion_laughs", _LAUGHS + _pb("laughs")),
    Case(
        "yaml",
        "anchor_audience",
        HEAD.format(id="anchors") + "audience: &a {tier: {eq: vip}}\nx: *a\n" + GOOD_ACTION,
    ),
    Case("yaml", "python_object_tag", _pb("tags") + "x: !!python/object/apply:os.system ['id']\n"),
    Case("yaml", "python_name_tag", _pb("tags2") + "x: !!python/name:os.system\n"),
    Case("yaml", "binary_tag", _pb("tags3") + "x: !!binary aGVsbG8=\n"),
    Case("yaml", "set_tag", _pb("tags4") + "x: !!set {a, b}\n"),
    Case("yaml", "yes_is_true", _pb("yes").replace("enabled: true", "enabled: yes")),
    Case("yaml", "on_off", _pb("onoff").replace("enabled: true", "enabled: off")),
    Case(
        "yaml",
        "octal",
        HEAD.format(id="octal") + "audience: {relationship_level: {eq: 0755}}\n" + GOOD_ACTION,
    ),
    Case("yaml", "sexagesimal", _pb("sexa").replace('"0 9 * * *"', "08:00")),
    Case("yaml", "tabs", _pb("tabs").replace("  - tag", "\t- tag")),
    Case("yaml", "duplicate_key", _pb("dup") + "title: again\n"),
    Case("yaml", "merge_key", _pb("merge") + "base: &b {a: 1}\nx:\n  <<: *b\n"),
    Case("yaml", "two_documents", _pb("docs") + "---\n" + _pb("docs2")),
    Case("yaml", "only_separator", "---\n"),
    Case("yaml", "empty", ""),
    Case("yaml", "null_document", "null\n"),
    Case("yaml", "list_document", "- a\n- b\n"),
    Case("yaml", "scalar_document", "just text\n"),
    Case("yaml", "not_utf8", _pb("gbk").encode("gbk")),
    Case("yaml", "bom_then_text", "\ufeff" + _pb("bom"), valid=True),
    Case("yaml", "nul_byte", _pb("nul").replace("测试剧本", "测\x00试")),
    Case("yaml", "control_chars", _pb("ctl").replace("测试剧本", "\x1b[31m红\x07")),
    Case(
        "yaml",
        "deep_flow",
        HEAD.format(id="deep")
        + "audience: "
        + "{all: [" * 300
        + "{tier: {eq: vip}}"
        + "]}" * 300
        + "\n"
        + GOOD_ACTION,
    ),
    Case(
        "yaml",
        "deep_block",
        HEAD.format(id="deep2") + "x:\n" + "".join("  " * (i + 1) + "- \n" for i in range(200)),
    ),
    Case(
        "yaml",
        "deep_nots",
        HEAD.format(id="nots")
        + "audience: "
        + "{not: " * 40
        + "{tier: {eq: vip}}"
        + "}" * 40
        + "\n"
        + GOOD_ACTION,
    ),
    Case(
        "yaml",
        "deep_all_16",
        HEAD.format(id="all17")
        + "audience: "
        + "{all: [" * 17
        + "{tier: {eq: vip}}"
        + "]}" * 17
        + "\n"
        + GOOD_ACTION,
    ),
    Case("yaml", "huge_file", _pb("huge") + "description: " + "长" * 1_100_000 + "\n"),
    Case("yaml", "many_keys", _pb("keys") + "".join(f"k{i}: {i}\n" for i in range(5000))),
    Case("yaml", "long_line", _pb("long").replace("测试剧本", "长" * 50_000)),
    Case(
        "yaml",
        "unclosed_flow",
        HEAD.format(id="unclosed") + "audience: {tier: {eq: vip}\n" + GOOD_ACTION,
    ),
    Case("yaml", "unclosed_quote", _pb("quote").replace("测试剧本", '"测试')),
    Case("yaml", "key_is_list", _pb("keylist") + "? [a, b]\n: 1\n"),
    Case("yaml", "key_is_number", _pb("keynum") + "1: one\n"),
    Case("yaml", "bad_cron", _pb("cron").replace('"0 9 * * *"', '"61 25 * * 8"')),
    Case("yaml", "cron_seconds", _pb("cron6").replace('"0 9 * * *"', '"0 0 9 * * *"')),
    Case("yaml", "cron_shorthand", _pb("cronat").replace('"0 9 * * *"', '"@reboot"')),
    Case("yaml", "id_with_spaces", _pb("has space")),
    Case("yaml", "id_traversal", _pb("../../etc/passwd")),
    Case("yaml", "id_empty", _pb('""')),
    Case("yaml", "id_number", _pb("12345")),
    Case("yaml", "category_wrong", _pb("cat").replace("marketing", "everything")),
    Case("yaml", "unknown_key", _pb("unknown") + "run_as: root\n"),
    Case("yaml", "priority_huge", _pb("prio") + "priority: 1e400\n"),
    Case("yaml", "priority_nan", _pb("nan") + "priority: .nan\n"),
    Case("yaml", "holdout_inf", _pb("hold") + "holdout_percent: .inf\n"),
    Case("yaml", "limits_negative", _pb("neg") + "limits: {max_per_run: -5}\n"),
    Case("yaml", "limits_huge", _pb("bigcap") + "limits: {max_per_run: 1" + "0" * 40 + "}\n"),
    Case("yaml", "duration_huge", _pb("dur") + "limits: {once_per_customer: 99999999999999d}\n"),
    Case(
        "yaml",
        "date_far",
        HEAD.format(id="far") + "audience: {birth_date: {gt: 99999-01-01}}\n" + GOOD_ACTION,
    ),
    Case(
        "yaml",
        "number_huge_value",
        HEAD.format(id="hugev") + "audience: {aum: {gt: 1e400}}\n" + GOOD_ACTION,
    ),
    Case("yaml", "actions_empty", _pb("noact", actions="actions: []\n")),
    Case("yaml", "actions_many", _pb("many", actions="actions:\n" + "  - tag: {add: x}\n" * 500)),
]

PAYLOADS = [
    "'; DROP TABLE customers; --",
    "' OR '1'='1",
    '" OR ""="',
    "1; DELETE FROM action_ledger",
    "x') UNION SELECT name, phone FROM customers --",
    "%' AND 1=0 --",
    "\\'; SELECT pg_sleep(10); --",
    "$$; DROP TABLE runs; $$",
    "`rm -rf /`",
    "../../../../etc/passwd",
]

# (case name, playbook id prefix, where the payload goes, whether it is a harmless value)
_PLACES: list[tuple[str, str, str, bool | None]] = [
    # values are bound parameters: valid, and harmless (a tag holds 32 characters at most)
    ("value_eq", "sqlv", "audience: {{name: {{eq: {p!r}}}}}\n", True),
    ("value_in", "sqlin", "audience: {{occupation: {{in: [{p!r}, x]}}}}\n", True),
    ("tag_value", "sqltag", "actions:\n  - tag: {{add: {p!r}}}\n", None),
    # names are checked against the dictionary, the registry and the folders: refused
    ("field_name", "sqlf", "audience: {{{p!r}: {{eq: x}}}}\n", False),
    ("enum_value", "sqle", "audience: {{tier: {{eq: {p!r}}}}}\n", False),
    ("segment_name", "sqls", "audience: {{segment: {p!r}}}\n", False),
    ("template_name", "sqlt", "actions:\n  - sms: {{template: {p!r}}}\n", False),
    ("webhook_name", "sqlw", "actions:\n  - webhook: {{endpoint: {p!r}}}\n", False),
]


def _sql_case(name: str, prefix: str, place: str, valid: bool | None, i: int, p: str) -> Case:
    part = place.format(p=p)
    text = (
        _pb(f"{prefix}{i}", actions=part)
        if part.startswith("actions:")
        else HEAD.format(id=f"{prefix}{i}") + part + GOOD_ACTION
    )
    return Case("sql", f"{name}_{i}", text, valid=len(p) <= 32 if valid is None else valid)


SQL_CASES = [
    _sql_case(name, prefix, place, valid, i, payload)
    for name, prefix, place, valid in _PLACES
    for i, payload in enumerate(PAYLOADS)
] + [Case("sql", f"id_{i}", _pb(payload.replace("\\", ""))) for i, payload in enumerate(PAYLOADS)]

SIZE_CASES = [
    Case(
        "size",
        "task_title_bomb",
        _pb(
            "titlebomb",
            actions="actions:\n  - task: {assignee: "
            "manager, title: \"{{ 'a' * 100000000 }}\", due_in: 3d}\n",
        ),
    ),
    Case(
        "size",
        "task_title_long",
        _pb(
            "titlelong",
            actions="actions:\n  - task: {assignee: "
            'manager, title: "' + "长" * 5000 + '", due_in: 3d}\n',
        ),
    ),
    Case(
        "size",
        "task_body_huge",
        _pb(
            "bodyhuge",
            actions="actions:\n  - task: {assignee: "
            "manager, title: t, body: \"{{ 'a' * 9999 }}{{ 'a' * 9999 }}{{ 'a' * 9999 }}"
            "{{ 'a' * 9999 }}{{ 'a' * 9999 }}{{ 'a' * 9999 }}{{ 'a' * 9999 }}{{ 'a' * 9999 }}"
            "{{ 'a' * 9999 }}{{ 'a' * 9999 }}{{ 'a' * 9999 }}\", due_in: 3d}\n",
        ),
    ),
    Case(
        "size",
        "email_subject_long",
        _pb(
            "subj",
            actions='actions:\n  - email: {subject: "'
            + "长" * 300
            + '", template: care_survey.email.j2}\n',
        ),
    ),
    Case("size", "title_field_long", _pb("titlefield").replace("测试剧本", "长" * 100_000)),
    Case("size", "description_long", _pb("desc") + 'description: "' + "长" * 200_000 + '"\n'),
]

PLAYBOOKS: list[Case] = YAML_TRAPS + SQL_CASES + SIZE_CASES
