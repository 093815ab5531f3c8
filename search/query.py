"""The query language, parsed without ever failing: what a user types becomes a `Plan`.

    đất đai                  every word must match (with or without diacritics)
    "bồi thường đất"         a phrase: the words next to each other, in order
    2025                     a number also matches the ways it is said aloud (search.numbers)
    thu hồi*                 a word beginning (never at the start of a word: no "*hồi")
    case:KN-2025-031  category:a  point:"Hòa Bình"  complainant:Đức  from:2024-01-01  to:2024-12-31

Only the fields above are understood (with Vietnamese aliases); anything else is read as words.
What could not be used as typed (an unclosed quote, an unknown field, a bad date, a backwards date
range, an over-long query) is still searched as well as it can be, and a Vietnamese message in
`Plan.messages` says what was done.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from itertools import product

from .analysis import exact, fold, has_marks, nfc, words
from .numbers import spoken_forms

MAX_QUERY_CHARS = 500
MAX_CLAUSES = 16
MAX_ALTERNATIVES = 64
MIN_PREFIX = 2

FIELDS = {
    "case": "case", "vuviec": "case", "ma": "case",
    "category": "category", "loai": "category", "phanloai": "category",
    "point": "point", "diemcau": "point",
    "complainant": "complainant", "nguoikhieunai": "complainant", "congdan": "complainant",
    "from": "date_from", "tu": "date_from", "tungay": "date_from",
    "to": "date_to", "den": "date_to", "denngay": "date_to",
}
FIELD_LIST = "case, category, point, complainant, from, to"
QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "＂": '"'})
_PART = re.compile(r'(?P<field>[^\s:"]+):(?:"(?P<fq>[^"]*)"|(?P<fv>[^\s"]+))|"(?P<phrase>[^"]*)"|(?P<term>[^\s"]+)')


@dataclass(frozen=True)
class Clause:
    """One thing that must match: a word, a phrase or a word beginning.

    `alternatives` are the folded token sequences that count as a match (the typed one first,
    then a number's spoken readings); `exact` and `marked` say how the user typed it, for ranking."""
    kind: str                                   # word | phrase | prefix
    text: str                                   # as typed (NFC), for messages
    alternatives: tuple[tuple[str, ...], ...]
    exact: tuple[str, ...]
    marked: tuple[bool, ...]

    @property
    def folded(self) -> tuple[str, ...]:
        return self.alternatives[0]


@dataclass
class Plan:
    clauses: list[Clause] = field(default_factory=list)
    filters: dict = field(default_factory=dict)    # case, category, point, complainant, date_from, date_to
    messages: list[str] = field(default_factory=list)
    adjacent: list[tuple[int, int]] = field(default_factory=list)  # word clauses typed side by side

    @property
    def empty(self) -> bool:
        return not self.clauses


def _word_clause(surface: str, prefix: bool = False) -> Clause:
    folded = fold(surface)
    alternatives = [(folded,)]
    if surface.isdigit() or folded.isdigit():
        alternatives += [tuple(form) for form in spoken_forms(folded)]
    return Clause("prefix" if prefix else "word", surface, tuple(alternatives[:MAX_ALTERNATIVES]),
                  (exact(surface),), (has_marks(surface),))


def _phrase_clause(surfaces: list[str], text: str) -> Clause:
    options = []
    for s in surfaces:
        f = fold(s)
        forms = [(f,)] + ([tuple(x) for x in spoken_forms(f)] if f.isdigit() else [])
        options.append(forms)
    alternatives = []
    for combo in product(*options):
        alternatives.append(tuple(t for part in combo for t in part))
        if len(alternatives) >= MAX_ALTERNATIVES:
            break
    return Clause("phrase", text, tuple(alternatives), tuple(exact(s) for s in surfaces),
                  tuple(has_marks(s) for s in surfaces))


def parse_date(value, end: bool = False) -> dt.date | None:
    """A date from a date, 'YYYY-MM-DD', 'DD/MM/YYYY', 'YYYY-MM' or 'YYYY' (the period's first
    day, or its last with `end`); None when it is none of these."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", text):
            return dt.date.fromisoformat("-".join(p.zfill(2) for p in text.split("-")))
        if m := re.fullmatch(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})", text):
            return dt.date(int(m[3]), int(m[2]), int(m[1]))
        if m := re.fullmatch(r"(\d{4})-(\d{1,2})", text):
            year, month = int(m[1]), int(m[2])
            if not end:
                return dt.date(year, month, 1)
            following = dt.date(year + month // 12, month % 12 + 1, 1)
            return following - dt.timedelta(days=1)
        if re.fullmatch(r"\d{4}", text):
            return dt.date(int(text), 12, 31) if end else dt.date(int(text), 1, 1)
    except ValueError:
        return None
    return None


def parse(query: str | None, *, date_from=None, date_to=None, case=None, category=None, point=None,
          complainant=None) -> Plan:
    """The plan for `query` and the filters given beside it (filters in the query win)."""
    plan = Plan()
    text = nfc(str(query or "")).translate(QUOTES)
    if len(text) > MAX_QUERY_CHARS:
        text = text[:MAX_QUERY_CHARS]
        plan.messages.append(f"Câu tìm kiếm quá dài; chỉ dùng {MAX_QUERY_CHARS} ký tự đầu.")
    if text.count('"') % 2:
        cut = text.rfind('"')
        text = text[:cut] + " " + text[cut + 1:]
        plan.messages.append("Thiếu dấu ngoặc kép đóng; phần sau dấu ngoặc được tìm như các từ riêng lẻ.")

    raw_filters = {"date_from": date_from, "date_to": date_to, "case": case, "category": category,
                   "point": point, "complainant": complainant}
    pending: list[tuple[str, object]] = []   # ("words", [surfaces]) or ("phrase", [surfaces], text)
    for m in _PART.finditer(text):
        if m["field"] is not None:
            name = FIELDS.get(fold(m["field"]).replace("_", ""))
            value = m["fq"] if m["fq"] is not None else m["fv"]
            if name is None or m["field"].isdigit():
                if not m["field"].isdigit():
                    plan.messages.append(f"Không có trường “{m['field']}”; các trường dùng được: {FIELD_LIST}. "
                                         "Đã tìm như từ thường.")
                pending.append(("words", [m["field"], value]))
            elif value.strip():
                raw_filters[name] = value.strip()
        elif m["phrase"] is not None:
            surfaces = [w for w, _, _ in words(m["phrase"])]
            if surfaces:
                pending.append(("phrase", surfaces, m["phrase"].strip()))
        else:
            pending.append(("words", [m["term"]]))

    previous_word = None
    for item in pending:
        if len(plan.clauses) >= MAX_CLAUSES:
            plan.messages.append(f"Câu tìm kiếm có quá nhiều từ; chỉ dùng {MAX_CLAUSES} từ đầu.")
            break
        if item[0] == "phrase":
            _, surfaces, phrase_text = item
            clause = _phrase_clause(surfaces, phrase_text) if len(surfaces) > 1 else _word_clause(surfaces[0])
            plan.clauses.append(clause)
            previous_word = None
            continue
        for raw in item[1]:
            previous_word = _add_term(plan, raw, previous_word)
    plan.clauses = plan.clauses[:MAX_CLAUSES]
    plan.adjacent = [(i, j) for i, j in plan.adjacent if j < len(plan.clauses)]
    _add_filters(plan, raw_filters)
    if plan.empty and not any(v for k, v in plan.filters.items()):
        plan.messages.append("Hãy nhập từ cần tìm (có dấu hoặc không dấu), ví dụ: đất đai, \"bồi thường\".")
    return plan


def _add_term(plan: Plan, raw: str, previous_word: int | None) -> int | None:
    """Add the words of one unquoted term; return the index of its last word clause."""
    stripped = raw.lstrip("*?")
    if stripped != raw and words(stripped):
        plan.messages.append(f"Không tìm được với ký tự đại diện ở đầu từ (“{raw}”); đã bỏ ký tự đó.")
    prefix = stripped.endswith("*")
    tokens = [w for w, _, _ in words(stripped)]
    for k, surface in enumerate(tokens):
        if len(plan.clauses) >= MAX_CLAUSES:
            return None
        is_prefix = prefix and k == len(tokens) - 1
        if is_prefix and len(fold(surface)) < MIN_PREFIX:
            plan.messages.append(f"Phần đầu từ “{surface}*” quá ngắn; đã tìm đúng từ “{surface}”.")
            is_prefix = False
        plan.clauses.append(_word_clause(surface, prefix=is_prefix))
        here = len(plan.clauses) - 1
        if previous_word is not None and not is_prefix and plan.clauses[previous_word].kind == "word":
            plan.adjacent.append((previous_word, here))
        previous_word = None if is_prefix else here
    return previous_word


def _add_filters(plan: Plan, raw: dict) -> None:
    for name in ("case", "category", "point", "complainant"):
        value = raw.get(name)
        if value is not None and str(value).strip():
            tokens = [fold(w) for w, _, _ in words(nfc(str(value)))]
            if tokens:
                plan.filters[name] = tokens
            else:
                plan.messages.append(f"Bộ lọc “{name}” không có chữ nào nên đã bỏ qua.")
    start, end = raw.get("date_from"), raw.get("date_to")
    d_from, d_to = parse_date(start), parse_date(end, end=True)
    for label, value, parsed in (("từ ngày", start, d_from), ("đến ngày", end, d_to)):
        if value not in (None, "") and parsed is None:
            plan.messages.append(f"Không hiểu ngày “{value}” ({label}); hãy viết YYYY-MM-DD. Đã bỏ điều kiện này.")
    if d_from and d_to and d_from > d_to:
        d_from, d_to = d_to, d_from
        plan.messages.append(f"Khoảng ngày bị ngược nên đã đổi lại: từ {d_from:%d/%m/%Y} đến {d_to:%d/%m/%Y}.")
    if d_from:
        plan.filters["date_from"] = d_from
    if d_to:
        plan.filters["date_to"] = d_to
