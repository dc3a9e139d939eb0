"""Column roles: which source column holds the customer id, the date, the price ...

Roles are detected from the header (English and Chinese synonyms, after Unicode and case
folding) and checked against the values (a "date" column whose values do not parse as dates
loses the role). The user can override any role with ``--map role=column``; the resulting
mapping is shown, stored with the source and saved in ``crmlens.toml``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from crmlens.errors import InputError

# Roles per table kind, in the order they are shown. `label` may map several columns.
ROLES: dict[str, tuple[str, ...]] = {
    "transactions": (
        "customer_id", "order_id", "timestamp", "product_id", "product_name", "category",
        "quantity", "unit_price", "amount", "channel", "region", "return_flag",
    ),
    "customers": (
        "customer_id", "name", "email", "phone", "gender", "birth_date", "age", "income",
        "region", "signup_date", "label",
    ),
    "events": (
        "customer_id", "timestamp", "event_type", "value", "channel", "order_id", "product_id",
        "text",
    ),
}

REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    # Each inner tuple is "one of these"; all inner tuples are required.
    "transactions": (("customer_id",), ("timestamp",), ("amount", "unit_price")),
    "customers": (("customer_id",),),
    "events": (("customer_id",), ("timestamp",)),
}

MULTI_ROLES = frozenset({"label"})

# Header synonyms after `normalize_header` (NFKC, lower case, no spaces/punctuation).
# Exact matches score 1.0; `KEYWORDS` (substrings) score lower.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "customer_id": (
        "customerid", "customer", "customerno", "customernumber", "custid", "cust", "clientid",
        "memberid", "memberno", "userid", "accountid", "buyerid", "contactid", "shopperid",
        "客户id", "客户编号", "客户号", "客户代码", "客户编码", "会员号", "会员id", "会员编号",
        "会员卡号", "用户id", "用户编号", "顾客id", "顾客编号", "买家id", "买家", "客户",
    ),
    "order_id": (
        "orderid", "orderno", "ordernumber", "order", "invoiceno", "invoice", "invoiceid",
        "invoicenumber", "transactionid", "txnid", "receiptno", "receiptid", "basketid",
        "订单号", "订单编号", "订单id", "单号", "发票号", "交易号", "交易编号", "流水号",
        "小票号", "订单",
    ),
    "timestamp": (
        "timestamp", "invoicedate", "orderdate", "orderdatetime", "ordertime", "date",
        "datetime", "time", "transactiondate", "purchasedate", "purchasetime", "saledate",
        "createdat", "eventtime", "eventdate", "paidat", "paymenttime",
        "下单时间", "订单日期", "订单时间", "交易时间", "交易日期", "日期", "时间", "购买时间",
        "购买日期", "支付时间", "付款时间", "成交时间", "创建时间", "发生时间", "销售日期",
    ),
    "product_id": (
        "productid", "stockcode", "sku", "itemid", "productcode", "itemcode", "articleno",
        "productno", "upc", "ean", "goodsid",
        "商品编号", "商品id", "商品编码", "产品编号", "产品id", "产品编码", "货号", "物料编号",
        "商品代码", "sku编码",
    ),
    "product_name": (
        "description", "productname", "itemname", "product", "item", "title", "goodsname",
        "商品名称", "商品名", "产品名称", "品名", "商品", "产品", "货品名称", "商品描述", "描述",
    ),
    "category": (
        "category", "productcategory", "categoryname", "department", "productline", "class",
        "类别", "品类", "分类", "商品类别", "商品分类", "产品类别", "类目", "大类",
    ),
    "quantity": (
        "quantity", "qty", "units", "count", "pieces", "number", "amountunits",
        "数量", "购买数量", "件数", "销量", "销售数量", "数目",
    ),
    "unit_price": (
        "unitprice", "price", "priceeach", "unitcost", "itemprice", "saleprice", "rate",
        "单价", "价格", "售价", "销售单价", "成交价", "商品单价",
    ),
    "amount": (
        "amount", "total", "totalprice", "totalamount", "linetotal", "sales", "revenue",
        "value", "subtotal", "spend", "payment", "paid", "netamount", "grossamount",
        "金额", "实付金额", "总价", "总金额", "销售额", "订单金额", "支付金额", "实付", "付款金额",
        "成交金额", "消费金额", "应付金额", "交易金额", "营业额",
    ),
    "channel": (
        "channel", "saleschannel", "source", "platform", "store", "shop", "medium",
        "渠道", "销售渠道", "来源", "平台", "门店", "店铺",
    ),
    "region": (
        "region", "country", "state", "province", "city", "area", "location", "market",
        "地区", "区域", "国家", "省份", "省", "城市", "市", "地域", "所在地",
    ),
    "return_flag": (
        "returnflag", "isreturn", "returned", "return", "refund", "isrefund", "cancelled",
        "canceled", "iscancelled", "退货", "是否退货", "退款", "是否退款", "退货标志", "已退货",
    ),
    "name": (
        "name", "customername", "fullname", "clientname", "membername", "contactname",
        "姓名", "名字", "客户名称", "客户姓名", "会员姓名", "名称", "顾客姓名",
    ),
    "email": ("email", "emailaddress", "mail", "e-mail", "邮箱", "电子邮件", "邮件", "电子邮箱"),
    "phone": (
        "phone", "phonenumber", "mobile", "mobilephone", "tel", "telephone", "cell",
        "手机", "手机号", "手机号码", "电话", "联系电话", "电话号码", "联系方式",
    ),
    "gender": ("gender", "sex", "性别"),
    "birth_date": (
        "birthdate", "dateofbirth", "dob", "birthday", "birth", "出生日期", "生日", "出生年月",
    ),
    "age": ("age", "年龄", "岁数"),
    "income": (
        "income", "annualincome", "salary", "monthlyincome", "incomek", "annualincomek",
        "收入", "年收入", "月收入", "工资", "薪资",
    ),
    "signup_date": (
        "signupdate", "signup", "registrationdate", "registeredat", "joindate", "joined",
        "createdate", "memberssince", "membersince", "firstseen", "opendate", "dtcustomer",
        "注册时间", "注册日期", "开户日期", "入会时间", "入会日期", "加入时间", "开卡日期",
    ),
    "label": (
        "churn", "churned", "label", "target", "responded", "response", "subscribed", "y",
        "converted", "是否流失", "流失", "标签", "是否响应", "响应", "是否订阅", "是否转化",
    ),
    "event_type": (
        "eventtype", "type", "event", "action", "activity", "interaction", "category",
        "类型", "事件类型", "事件", "行为", "行为类型", "互动类型",
    ),
    "value": (
        "value", "score", "rating", "reviewscore", "stars", "nps", "评分", "分值", "得分",
        "评价分数", "星级", "分数",
    ),
    "text": (
        "text", "comment", "review", "message", "content", "feedback", "note",
        "评论", "内容", "反馈", "留言", "备注", "评价",
    ),
}

# Substring keywords (score 0.6): catch "Customer Number (CRM)", "订单支付金额", ...
KEYWORDS: dict[str, tuple[str, ...]] = {
    "customer_id": ("customerid", "custid", "clientid", "memberid", "客户编号", "客户id", "会员"),
    "order_id": ("orderid", "orderno", "invoice", "订单号", "订单编号", "单号"),
    "timestamp": ("date", "time", "日期", "时间"),
    "product_id": ("sku", "stockcode", "productid", "商品编号", "货号", "商品编码"),
    "product_name": ("description", "productname", "品名", "商品名"),
    "category": ("category", "类别", "品类", "分类", "类目"),
    "quantity": ("qty", "quantity", "数量"),
    "unit_price": ("unitprice", "price", "单价", "价格"),
    "amount": ("amount", "total", "revenue", "金额", "销售额"),
    "channel": ("channel", "渠道"),
    "region": ("country", "region", "province", "city", "地区", "省", "城市", "国家"),
    "return_flag": ("return", "refund", "退货", "退款"),
    "email": ("email", "mail", "邮箱"),
    "phone": ("phone", "mobile", "手机", "电话"),
    "birth_date": ("birth", "生日", "出生"),
    "income": ("income", "salary", "收入"),
    "signup_date": ("signup", "register", "注册", "入会", "开户"),
    "label": ("churn", "流失"),
    "value": ("score", "rating", "评分"),
}

# Value checks: the share of sampled non-null values that must look right for a header match
# to stand, and the checks that can assign a role from the values alone.
VALUE_KIND: dict[str, str] = {
    "timestamp": "datetime", "birth_date": "datetime", "signup_date": "datetime",
    "quantity": "number", "unit_price": "number", "amount": "number", "age": "number",
    "income": "number", "value": "number", "email": "email", "phone": "phone",
}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[\d\s\-().]{6,20}$")
_NUMBER = re.compile(r"^[\s(+\-]*[¥$€£₩₹]?\s*[\d.,\s]+\s*(元|€|円|rmb|cny|usd|eur|gbp)?\)?$", re.I)
_DATEISH = re.compile(
    r"^(\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{8}|\d{9,10}|\d{12,13}"
    r"|\d{1,2}[- ][A-Za-z]{3}|[A-Za-z]{3,9}\.? \d{1,2},? \d{4})"
)


def normalize_header(name: str) -> str:
    """Fold a header for matching: NFKC, lower case, drop spaces, punctuation and units."""
    text = unicodedata.normalize("NFKC", str(name)).strip().lower()
    text = re.sub(r"[(\[（【].*?[)\]）】]", "", text)  # "Amount (GBP)", "金额（元）"
    return re.sub(r"[\s_\-./:#'\"`]+", "", text)


def value_fit(kind: str, values: Sequence[object]) -> float:
    """Share of ``values`` (non-null samples) that look like ``kind``."""
    texts = [unicodedata.normalize("NFKC", str(v)).strip() for v in values if v is not None]
    texts = [v for v in texts if v]
    if not texts:
        return 1.0  # an empty column contradicts nothing
    if kind == "datetime":
        ok = sum(1 for v in texts if _DATEISH.match(v))
    elif kind == "number":
        ok = sum(1 for v in texts if _NUMBER.match(v) and any(c.isdigit() for c in v))
    elif kind == "email":
        ok = sum(1 for v in texts if _EMAIL.match(v))
    elif kind == "phone":
        ok = sum(1 for v in texts if _PHONE.match(v) and sum(c.isdigit() for c in v) >= 6)
    else:
        return 1.0
    return ok / len(texts)


@dataclass
class RoleMapping:
    """The roles found for one source: ``roles[role] = column`` (``label`` may list several)."""

    kind: str
    roles: dict[str, str] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    # How each role was decided: "header", "values", "saved" or "user".
    how: dict[str, str] = field(default_factory=dict)

    def column(self, role: str) -> str | None:
        return self.roles.get(role)

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = dict(self.roles)
        if self.labels:
            out["label"] = list(self.labels)
        return out

    def mapped_columns(self) -> set[str]:
        return set(self.roles.values()) | set(self.labels)


def _header_score(role: str, folded: str) -> float:
    if folded in SYNONYMS.get(role, ()):
        return 1.0
    if any(k in folded for k in KEYWORDS.get(role, ())):
        return 0.6
    return 0.0


def detect_roles(
    kind: str,
    columns: Sequence[str],
    samples: Mapping[str, Sequence[object]],
    *,
    numeric_columns: frozenset[str] = frozenset(),
    temporal_columns: frozenset[str] = frozenset(),
) -> RoleMapping:
    """Detect column roles for a table of ``kind``.

    Parameters
    ----------
    kind : {"transactions", "customers", "events"}
    columns : sequence of str
        Source column names, in order.
    samples : mapping of column name to sampled values
        A few thousand values per column (nulls allowed) used to confirm or reject header
        matches and to find email/phone/date columns whose headers say nothing.
    numeric_columns, temporal_columns : frozenset of str
        Columns already typed as numbers / dates by the source format (Parquet, SQL).
    """
    roles = ROLES[kind]
    candidates: list[tuple[float, int, str, str]] = []
    for position, column in enumerate(columns):
        folded = normalize_header(column)
        values = samples.get(column, ())
        for role in roles:
            score = _header_score(role, folded)
            check = VALUE_KIND.get(role)
            if check and score:
                typed_ok = (check == "datetime" and column in temporal_columns) or (
                    check == "number" and column in numeric_columns
                )
                fit = 1.0 if typed_ok else value_fit(check, values)
                if fit < 0.5:
                    score = 0.0  # the header says "date" but the values are not dates
                else:
                    score *= 0.5 + 0.5 * fit
            elif check in {"email", "phone", "datetime"} and not score:
                # Values alone can reveal an unlabelled email, phone or date column.
                if column in temporal_columns or (values and value_fit(check, values) >= 0.9):
                    score = 0.4
            if score > 0:
                candidates.append((score, -position, role, column))
    mapping = RoleMapping(kind=kind)
    taken: set[str] = set()
    # Greedy by score; the earlier column wins ties (exports put the main fields first).
    for score, _neg_pos, role, column in sorted(candidates, reverse=True):
        if column in taken:
            continue
        if role in MULTI_ROLES:
            mapping.labels.append(column)
            mapping.how.setdefault(role, "header")
            taken.add(column)
            continue
        if role in mapping.roles:
            continue
        mapping.roles[role] = column
        mapping.how[role] = "header" if score >= 0.5 else "values"
        taken.add(column)
    return mapping


def parse_overrides(items: Sequence[str], kind: str, columns: Sequence[str]) -> dict[str, str | None]:
    """Parse ``role=column`` overrides (``role=`` unmaps a role) and check them."""
    overrides: dict[str, str | None] = {}
    for item in items:
        role, sep, column = item.partition("=")
        role = role.strip()
        column = column.strip()
        if not sep:
            raise InputError("error.map_syntax", item=item)
        if role not in ROLES[kind]:
            raise InputError(
                "error.map_unknown_role", role=role, kind=kind, roles=", ".join(ROLES[kind])
            )
        if column and column not in columns:
            raise InputError(
                "error.map_unknown_column", column=column, role=role,
                columns=", ".join(columns),
            )
        overrides[role] = column or None
    return overrides


def apply_overrides(
    mapping: RoleMapping, overrides: Mapping[str, str | None], how: str
) -> RoleMapping:
    """Apply user or saved ``role -> column`` choices on top of a detected mapping."""
    for role, column in overrides.items():
        if role in MULTI_ROLES:
            mapping.labels = [column] if column else []
            mapping.how[role] = how
            continue
        # A column moved to a new role leaves its old one.
        for other, col in list(mapping.roles.items()):
            if column is not None and col == column and other != role:
                del mapping.roles[other]
        if column in mapping.labels:
            mapping.labels.remove(column)
        if column is None:
            mapping.roles.pop(role, None)
        else:
            mapping.roles[role] = column
        mapping.how[role] = how
    return mapping


def check_required(mapping: RoleMapping, path: str, columns: Sequence[str]) -> None:
    """Raise a clear error when a required role has no column."""
    for options in REQUIRED[mapping.kind]:
        if not any(role in mapping.roles for role in options):
            raise InputError(
                "error.missing_role",
                path=path,
                role=" / ".join(options),
                kind=mapping.kind,
                columns=", ".join(columns),
                example=options[0],
            )
