"""Numbers as Vietnamese speech says them: digits -> the word sequences a transcript may hold.

A transcript from speech has "hai nghìn không trăm hai mươi lăm" where a person types "2025".
`spoken_forms(n)` gives every usual reading (folded, as token lists) so a query with digits can
look for all of them:

- thousands as nghìn or ngàn; "không trăm" for an empty hundreds place, or left out in speech
  ("hai nghìn hai mươi lăm");
- a units digit after an empty tens place as lẻ or linh ("hai nghìn không trăm lẻ năm");
- tens as mười (10-19) and mươi (20-90), "mươi" left out in quick speech ("hai lăm");
- 5 after a tens place as lăm or năm (also "nhăm"), 1 after mươi as mốt or một, 4 after mươi
  as tư or bốn; 10 alone as mười;
- years and codes also read digit by digit ("hai không hai lăm" is not said; "hai không hai năm"
  is), so a 4-digit number also gets its digit-by-digit reading.

`parse_spoken(tokens)` goes the other way for display and tests.
"""
from __future__ import annotations

from itertools import product

from .analysis import fold

DIGITS = ["không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín"]
SCALES = [(10 ** 9, ["tỷ"]), (10 ** 6, ["triệu"]), (10 ** 3, ["nghìn", "ngàn"])]
MAX_FORMS = 64  # readings per number: enough for every variant of a year or an amount


def _units_after_tens(d: int) -> list[list[str]]:
    if d == 1:
        return [["mốt"], ["một"]]
    if d == 4:
        return [["tư"], ["bốn"]]
    if d == 5:
        return [["lăm"], ["năm"], ["nhăm"]]
    return [[DIGITS[d]]]


def _below_100(n: int, after_hundreds: bool) -> list[list[str]]:
    """Readings of 0 < n < 100; `after_hundreds` when a hundreds place (maybe 'không trăm') came first."""
    tens, units = divmod(n, 10)
    if tens == 0:
        word = [DIGITS[units]]
        return [["lẻ", *word], ["linh", *word]] if after_hundreds else [word]
    if tens == 1:
        head = ["mười"]
        if units == 0:
            return [head]
        tail = [["lăm"]] if units == 5 else [[DIGITS[units]]]
        return [head + t for t in tail]
    head = [DIGITS[tens]]
    if units == 0:
        return [head + ["mươi"], head + ["chục"]]
    forms = [head + ["mươi"] + t for t in _units_after_tens(units)]
    if not after_hundreds:  # a number said alone, quickly: "hai lăm", "ba mốt"
        forms += [head + t for t in _units_after_tens(units) if t != ["một"]]
    return forms


def _below_1000(n: int, leading: bool) -> list[list[str]]:
    """Readings of 0 < n < 1000; `leading` when nothing bigger was said before it."""
    hundreds, rest = divmod(n, 100)
    if leading and hundreds == 0:
        return _below_100(rest, after_hundreds=False)
    head = [DIGITS[hundreds], "trăm"]
    forms = [head] if rest == 0 else [head + t for t in _below_100(rest, after_hundreds=True)]
    if hundreds == 0:
        # Speech often drops the empty hundreds place: "hai nghìn (không trăm) hai mươi lăm",
        # "hai nghìn (không trăm) lẻ năm".
        forms += _below_100(rest, after_hundreds=True)
    return forms


def _readings(n: int) -> list[list[str]]:
    if n == 0:
        return [["không"]]
    for scale, names in SCALES:
        if n >= scale:
            high, low = divmod(n, scale)
            forms = []
            for head, name in product(_readings(high), names):
                if low == 0:
                    forms.append(head + [name])
                else:
                    tails = _below_1000(low, leading=False) if scale == 1000 else _readings_low(low, scale)
                    forms += [head + [name] + t for t in tails]
                if len(forms) > MAX_FORMS:
                    return forms[:MAX_FORMS]
            return forms
    return _below_1000(n, leading=True)


def _readings_low(low: int, scale: int) -> list[list[str]]:
    # Below a million or a billion the rest reads like a number of its own, with "không trăm"
    # for an empty hundreds place of its biggest group.
    if low >= 1000:
        return _readings(low)
    return _below_1000(low, leading=False)


def spoken_forms(digits: str) -> list[list[str]]:
    """Every usual spoken reading of the number written `digits`, as lists of folded tokens.

    Leading zeros and numbers of more than 12 digits are read digit by digit only."""
    forms: list[list[str]] = []
    if digits.isdigit() and len(digits) <= 12 and not (len(digits) > 1 and digits[0] == "0"):
        forms = _readings(int(digits))
    if 2 <= len(digits) <= 12 and (len(digits) == 4 or digits[0] == "0" or len(digits) > 6):
        forms.append([DIGITS[int(d)] for d in digits])
    seen, out = set(), []
    for form in forms:
        key = tuple(fold(w) for w in form)
        if key and key not in seen:
            seen.add(key)
            out.append(list(key))
    return out[:MAX_FORMS]


_VALUE = {fold(w): i for i, w in enumerate(DIGITS)}
_VALUE.update({"mot": 1, "mốt": 1, "tu": 4, "lam": 5, "nham": 5, "bon": 4})
_VALUE = {fold(k): v for k, v in _VALUE.items()}


def parse_spoken(tokens: list[str], digit_by_digit: bool = True) -> int | None:
    """The number that the tokens say ("hai nghìn không trăm hai mươi lăm" -> 2025), or None.

    With `digit_by_digit`, digits alone are read one by one ("hai không hai năm" -> 2025)."""
    tokens = [fold(t) for t in tokens]
    if not tokens or any(t not in NUMBER_WORDS for t in tokens):
        return None
    if len(tokens) > 1 and all(t in _VALUE for t in tokens):
        if not digit_by_digit:
            return None
        if len(tokens) == 2 and tokens[1] not in ("mot", "tu", "lam", "nham"):
            return None  # "hai ba" is "two or three"; "hai lăm", "ba mốt" are quick tens
        # read digit by digit ("hai khong hai nam") or quick tens ("hai lam")
        return int("".join(str(_VALUE[t]) for t in tokens))
    total, group, current = 0, 0, None
    for i, t in enumerate(tokens):
        previous = tokens[i - 1] if i else ""
        if t in _VALUE:
            if current is not None:
                return None
            current = _VALUE[t]
        elif t == "tram":
            if current is None:
                return None
            group += current * 100
            current = None
        elif t in ("le", "linh"):
            if previous != "tram" and previous not in _SCALES:
                return None
        elif t == "muoi":  # mười (10) alone, mươi after a digit
            if previous == "muoi":
                return None
            group += 10 if current is None else current * 10
            current = None
        elif t == "chuc":
            if current is None:
                return None
            group += current * 10
            current = None
        else:  # a scale word
            if current is None and group == 0:
                return None
            group += current or 0
            total += group * _SCALES[t]
            group, current = 0, None
    return total + group + (current or 0)


_SCALES = {"ty": 10 ** 9, "trieu": 10 ** 6, "nghin": 1000, "ngan": 1000}
NUMBER_WORDS = frozenset(_VALUE) | {"tram", "le", "linh", "muoi", "chuc"} | frozenset(_SCALES)
MAX_RUN = 12


def spoken_numbers(folded: list[str]) -> list[tuple[int, str]]:
    """(position, digits) of each number said in two or more words in folded tokens, leftmost
    and longest first: "thang ba nam hai nghin khong tram hai muoi lam" gives (3, "2025"). A
    number before a scale word is given alone too ("mot tram hai muoi ba trieu": 123000000 and
    123). Digits are read one by one only in a run of nothing but digits (not "ba nam hai" in
    "tháng ba năm hai nghìn")."""
    out = []
    i, n = 0, len(folded)
    while i < n:
        if folded[i] not in NUMBER_WORDS:
            i += 1
            continue
        end = i
        while end < n and end - i < MAX_RUN and folded[end] in NUMBER_WORDS:
            end += 1
        run = folded[i:end]
        digits_only = all(t in _VALUE for t in run)
        for j in range(end, i + 1, -1):
            value = parse_spoken(folded[i:j], digit_by_digit=digits_only)
            if value is not None:
                out.append((i, str(value)))
                scale = next((k for k in range(i, j) if folded[k] in _SCALES), None)
                if scale is not None and scale - i >= 2:
                    head = parse_spoken(folded[i:scale], digit_by_digit=False)
                    if head is not None:
                        out.append((i, str(head)))
                i = j
                break
        else:
            i += 1
    return out
