"""Word lists for the demo store: names, places, products, occupations.

Kept apart from :mod:`engine.demo.generator` so the generator reads as logic, not as data. Weights
are rough shares (the 2020 census for surnames); the generator expands them into flat lookup
tables so that a weighted pick costs one ``random()`` call in its hot loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# (surname, pinyin, weight in ‰ of the population, roughly)
SURNAMES: tuple[tuple[str, str, int], ...] = (
    ("王", "wang", 71), ("李", "li", 70), ("张", "zhang", 67), ("刘", "liu", 54),
    ("陈", "chen", 46), ("杨", "yang", 31), ("黄", "huang", 22), ("赵", "zhao", 20),
    ("吴", "wu", 18), ("周", "zhou", 17), ("徐", "xu", 13), ("孙", "sun", 12),
    ("马", "ma", 12), ("朱", "zhu", 11), ("胡", "hu", 10), ("郭", "guo", 10),
    ("何", "he", 9), ("林", "lin", 9), ("高", "gao", 9), ("罗", "luo", 8),
    ("郑", "zheng", 8), ("梁", "liang", 7), ("谢", "xie", 6), ("宋", "song", 5),
    ("唐", "tang", 5), ("许", "xu", 5), ("韩", "han", 5), ("邓", "deng", 5),
    ("冯", "feng", 5), ("曹", "cao", 5), ("彭", "peng", 4), ("曾", "zeng", 4),
    ("肖", "xiao", 4), ("田", "tian", 4), ("董", "dong", 4), ("潘", "pan", 3),
    ("袁", "yuan", 3), ("蔡", "cai", 3), ("蒋", "jiang", 3), ("余", "yu", 3),
    ("于", "yu", 3), ("杜", "du", 3), ("叶", "ye", 3), ("程", "cheng", 3),
    ("魏", "wei", 3), ("苏", "su", 3), ("吕", "lv", 3), ("丁", "ding", 3),
    ("任", "ren", 3), ("卢", "lu", 2), ("姚", "yao", 2), ("沈", "shen", 2),
    ("钟", "zhong", 2), ("姜", "jiang", 2), ("崔", "cui", 2), ("谭", "tan", 2),
    ("陆", "lu", 2), ("范", "fan", 2), ("汪", "wang", 2), ("廖", "liao", 2),
    ("石", "shi", 2), ("金", "jin", 2), ("韦", "wei", 2), ("贾", "jia", 2),
    ("夏", "xia", 2), ("付", "fu", 2), ("方", "fang", 2), ("邹", "zou", 1),
    ("熊", "xiong", 1), ("白", "bai", 1), ("孟", "meng", 1), ("秦", "qin", 1),
    ("邱", "qiu", 1), ("侯", "hou", 1), ("江", "jiang", 1), ("尹", "yin", 1),
    ("薛", "xue", 1), ("闫", "yan", 1), ("段", "duan", 1), ("雷", "lei", 1),
    ("龙", "long", 1), ("黎", "li", 1), ("史", "shi", 1), ("陶", "tao", 1),
    ("贺", "he", 1), ("毛", "mao", 1), ("郝", "hao", 1), ("顾", "gu", 1),
    ("龚", "gong", 1), ("邵", "shao", 1), ("万", "wan", 1), ("钱", "qian", 1),
    ("严", "yan", 1), ("武", "wu", 1), ("戴", "dai", 1), ("欧阳", "ouyang", 1),
)  # fmt: skip

# Given-name characters by the gender they are read as, so 先生/女士 in a greeting fits.
MALE_CHARS: tuple[tuple[str, str], ...] = (
    ("伟", "wei"), ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"),
    ("勇", "yong"), ("杰", "jie"), ("涛", "tao"), ("明", "ming"), ("超", "chao"),
    ("刚", "gang"), ("平", "ping"), ("辉", "hui"), ("鹏", "peng"), ("华", "hua"),
    ("飞", "fei"), ("鑫", "xin"), ("波", "bo"), ("斌", "bin"), ("宇", "yu"),
    ("浩", "hao"), ("凯", "kai"), ("健", "jian"), ("俊", "jun"), ("帆", "fan"),
    ("旭", "xu"), ("宁", "ning"), ("龙", "long"), ("建", "jian"), ("国", "guo"),
    ("峰", "feng"), ("志", "zhi"), ("文", "wen"), ("东", "dong"), ("海", "hai"),
    ("成", "cheng"), ("亮", "liang"), ("博", "bo"), ("晨", "chen"), ("轩", "xuan"),
    ("睿", "rui"), ("德", "de"), ("永", "yong"), ("庆", "qing"), ("昊", "hao"),
    ("嘉", "jia"), ("泽", "ze"), ("振", "zhen"), ("毅", "yi"), ("林", "lin"),
)  # fmt: skip
FEMALE_CHARS: tuple[tuple[str, str], ...] = (
    ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("艳", "yan"), ("娟", "juan"), ("霞", "xia"), ("秀", "xiu"), ("燕", "yan"),
    ("玲", "ling"), ("桂", "gui"), ("英", "ying"), ("红", "hong"), ("梅", "mei"),
    ("琳", "lin"), ("婷", "ting"), ("雪", "xue"), ("慧", "hui"), ("颖", "ying"),
    ("倩", "qian"), ("萍", "ping"), ("洁", "jie"), ("琴", "qin"), ("云", "yun"),
    ("莉", "li"), ("兰", "lan"), ("晶", "jing"), ("丹", "dan"), ("佳", "jia"),
    ("欣", "xin"), ("怡", "yi"), ("雯", "wen"), ("悦", "yue"), ("萱", "xuan"),
    ("涵", "han"), ("诗", "shi"), ("梦", "meng"), ("月", "yue"), ("凤", "feng"),
    ("玉", "yu"), ("淑", "shu"), ("翠", "cui"), ("珍", "zhen"), ("美", "mei"),
    ("晓", "xiao"), ("思", "si"), ("雨", "yu"), ("琪", "qi"), ("蓉", "rong"),
)  # fmt: skip

CITIES: tuple[str, ...] = (
    "上海", "北京", "广州", "深圳", "杭州", "南京", "苏州", "成都",
    "武汉", "西安", "天津", "重庆", "宁波", "青岛", "厦门", "长沙",
)  # fmt: skip
BRANCH_AREAS: tuple[str, ...] = (
    "城东", "城西", "城南", "城北", "高新区", "开发区", "人民路", "中山路",
    "解放路", "滨江", "湖滨", "新区", "金融街", "科技园", "大学城", "火车站",
    "世纪大道", "南京路", "建设路", "和平路", "长江路", "临港", "空港", "会展中心",
)  # fmt: skip
ORDINALS: tuple[str, ...] = ("", "第二", "第三", "第四", "第五", "第六", "第七", "第八", "第九")

# Valid mainland mobile number prefixes (first three digits).
MOBILE_PREFIXES: tuple[str, ...] = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
    "145", "147", "150", "151", "152", "153", "155", "156", "157", "158",
    "159", "166", "170", "171", "173", "175", "176", "177", "178", "180",
    "181", "182", "183", "184", "185", "186", "187", "188", "189", "191",
    "193", "195", "198", "199",
)  # fmt: skip

# Reserved example domains (RFC 2606): a demo store must never hold a reachable address.
EMAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.net", "example.org")
MANAGER_EMAIL_DOMAIN = "bank.example.com"

OCCUPATIONS: tuple[tuple[str, int], ...] = (
    ("企业职员", 22), ("教师", 6), ("医生", 3), ("护士", 3), ("工程师", 7),
    ("公务员", 5), ("个体工商户", 8), ("私营企业主", 3), ("销售", 6), ("会计", 4),
    ("律师", 1), ("司机", 4), ("农民", 5), ("金融从业者", 2), ("企业高管", 2),
    ("程序员", 4), ("设计师", 2), ("自由职业", 6), ("工人", 7),
)  # fmt: skip
WEALTHY_OCCUPATIONS: tuple[str, ...] = (
    "私营企业主", "企业高管", "个体工商户", "医生", "律师", "金融从业者",
)  # fmt: skip

# name suffix, term in days
TIME_DEPOSITS: tuple[tuple[str, int], ...] = (
    ("整存整取三个月", 91), ("整存整取六个月", 182), ("整存整取一年", 365),
    ("整存整取二年", 730), ("整存整取三年", 1095), ("大额存单三年", 1095),
    ("大额存单五年", 1825),
)  # fmt: skip
WEALTH_PRODUCTS: tuple[tuple[str, int], ...] = (
    ("稳利理财90天", 90), ("季季盈理财", 91), ("安心半年享", 182),
    ("稳健增利一年期", 365), ("睿盈两年期", 730), ("周周宝七天", 7),
)  # fmt: skip
FUNDS: tuple[str, ...] = (
    "沪深300指数A", "中证500指数C", "稳健债券A", "货币市场基金", "消费升级混合",
    "科技创新混合", "养老目标2035", "红利低波ETF联接",
)  # fmt: skip
INSURANCE: tuple[str, ...] = ("安康终身寿险", "福享年金保险", "守护重疾险", "臻享增额终身寿")
BONDS: tuple[str, ...] = ("储蓄国债(电子式)三年期", "储蓄国债(电子式)五年期", "记账式国债")


# --- weighted tables ------------------------------------------------------------------------


def expand(pairs: Sequence[tuple[Any, int]], size: int | None = 100) -> tuple[Any, ...]:
    """A weighted list as a flat table: ``t[int(random() * len(t))]`` is a weighted pick.

    Most tables have exactly ``size`` (100) entries, so the generator's hot loop can write
    ``t[int(r() * 100)]``; a change of weights that broke that fails here, at import.
    """
    table = tuple(value for value, weight in pairs for _ in range(weight))
    if size is not None and len(table) != size:
        raise ValueError(f"weights add up to {len(table)}, not {size}")
    return table


SURNAME_TABLE = expand([((s, p), w) for s, p, w in SURNAMES], None)
OCCUPATION_TABLE = expand(OCCUPATIONS, None)
RISK_TABLE = expand([("C1", 15), ("C2", 30), ("C3", 30), ("C4", 17), ("C5", 8)])
RISK_TABLE_OLD = expand([("C1", 40), ("C2", 35), ("C3", 18), ("C4", 5), ("C5", 2)])
CHANNEL_TABLE = expand([("sms", 50), ("phone", 25), ("email", 12), ("visit", 13)])
CHANNEL_TABLE_VIP = expand([("sms", 20), ("phone", 35), ("email", 10), ("visit", 35)])
HOLDING_COUNT = {
    "mass": expand([(1, 55), (2, 30), (3, 12), (4, 3)]),
    "gold": expand([(1, 20), (2, 40), (3, 30), (4, 10)]),
    "vip": expand([(1, 5), (2, 25), (3, 40), (4, 30)]),
    "private": expand([(1, 2), (2, 18), (3, 40), (4, 40)]),
}
PRODUCT_TABLE = expand([("time_deposit", 35), ("wealth", 25), ("fund", 20),
                         ("insurance", 10), ("bond", 10)])  # fmt: skip
TX_KIND_TABLE = expand([("deposit", 20), ("withdrawal", 20), ("transfer_in", 18),
                         ("transfer_out", 18), ("purchase", 12), ("redemption", 12)])  # fmt: skip
TX_CHANNEL_TABLE = expand([("mobile", 55), ("online", 15), ("atm", 15), ("counter", 15)])
TX_COUNT = {
    "mass": expand([(1, 25), (2, 25), (3, 20), (4, 15), (5, 10), (6, 5)]),
    "gold": expand([(2, 20), (3, 25), (4, 25), (5, 15), (6, 10), (8, 5)]),
}
CONTACT_COUNT = {
    "mass": expand([(0, 50), (1, 35), (2, 15)]),
    "gold": expand([(1, 30), (2, 30), (3, 25), (4, 15)]),
    "vip": expand([(n, 1) for n in range(3, 11)], None),
    "private": expand([(n, 1) for n in range(6, 16)], None),
}
CONTACT_CHANNEL_TABLE = expand([("phone", 50), ("wechat", 25), ("sms", 10), ("visit", 15)])
OUTCOME_TABLE = expand([("reached", 55), ("no_answer", 25), ("refused", 5), ("scheduled", 15)])
COMPLAINT_CATEGORY_TABLE = expand([("service", 40), ("fee", 25), ("product", 20),
                                    ("fraud", 5), ("other", 10)])  # fmt: skip
# severity, days until due
SEVERITY_TABLE = expand([(("low", 15), 40), (("medium", 7), 35), (("high", 3), 18),
                          (("critical", 1), 7)])  # fmt: skip

# Days before as_of, as (cumulative share, low, high) buckets.
OPENED_DAYS = ((0.015, 1, 14), (0.03, 15, 89), (0.06, 90, 364), (1.0, 365, 7300))  # 3% 'new'
IDLE_DAYS = ((0.65, 1, 30), (0.80, 31, 90), (0.90, 91, 180), (0.96, 181, 365), (1.0, 366, 400))
IDLE_DAYS_VIP = ((0.9, 1, 60), (1.0, 61, 400))  # with the planted ones, ~17% idle > 60 days
LAST_CONTACT_DAYS_VIP = ((0.6, 1, 30), (0.8, 31, 90), (0.92, 91, 180), (1.0, 181, 364))
