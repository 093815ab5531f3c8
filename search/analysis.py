"""Vietnamese text analysis: the one place that turns text (documents and queries) into tokens.

Every string is first normalised to Unicode NFC: NFD text (a letter followed by combining marks)
would split words at the marks and fold wrongly. Then it is lowercased and cut into syllables
(runs of letters and digits). Each syllable has two forms:

- the *exact* form keeps its marks, with the tone mark moved to one canonical place, so the old
  and new placements (hoà / hòa, thuỷ / thủy, khoẻ / khỏe) are the same token;
- the *folded* form has no marks at all and đ becomes d ("Đất" -> "dat"), so a query typed
  without diacritics finds the marked text.

The index stores both; queries match on the folded form and rank exact forms first.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# The five tone marks as combining characters (huyền, sắc, ngã, hỏi, nặng). The other marks of
# Vietnamese (circumflex, breve, horn) make different vowels and stay in the exact form.
TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")
QUALITY_VOWELS = frozenset("ăâêôơư")
VOWELS = frozenset("aăâeêioôơuưy")

# A syllable is a run of letters and digits; "1.500.000" and "1,500,000" are one number.
_TOKEN = re.compile(r"\d{1,3}(?:[.,]\d{3})+(?![\d.,]\d)|\w+")
_GROUP_SEPARATORS = str.maketrans("", "", ".,")
_FOLD_TABLE = str.maketrans({"đ": "d", "Đ": "D"})


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def words(text: str) -> list[tuple[str, int, int]]:
    """The syllables of `text` (NFC) as (surface, start offset, end offset), in order."""
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


@lru_cache(maxsize=65536)
def fold(token: str) -> str:
    """`token` without any marks, đ as d, lowercased: "Đức" -> "duc", "hoà" -> "hoa"."""
    if token[:1].isdigit():
        return token.translate(_GROUP_SEPARATORS)
    decomposed = unicodedata.normalize("NFD", token.lower().translate(_FOLD_TABLE))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=65536)
def exact(token: str) -> str:
    """`token` lowercased (NFC) with its tone mark at one canonical place.

    The canonical place is the one of the reform spelling: on the vowel with a quality mark if
    there is one (ươ takes it on ơ), else on the last vowel when a consonant follows ("hoàn"),
    and for an open syllable on the second vowel of oa, oe, uy ("hoà", "khoẻ", "thuỷ") and on
    the first vowel of the other pairs ("mùa", "tài"); the middle one of three vowels.
    """
    if token[:1].isdigit():
        return token.translate(_GROUP_SEPARATORS)
    token = nfc(token.lower())
    decomposed = unicodedata.normalize("NFD", token)
    tones = [ch for ch in decomposed if ch in TONE_MARKS]
    if not tones:
        return token
    base = nfc("".join(ch for ch in decomposed if ch not in TONE_MARKS))
    where = _tone_position(base)
    if where is None:
        return token
    return nfc(base[: where + 1] + tones[-1] + base[where + 1:])


def _tone_position(base: str) -> int | None:
    """Index of the letter of `base` (a toneless syllable) that carries the tone."""
    start = 0
    # "qu" and "gi" are initial consonants: their u / i is not part of the vowel nucleus
    # (quả, giá), except "gi" alone or before a consonant (gì, gìn).
    if base.startswith("qu"):
        start = 2
    elif base.startswith("gi") and len(base) > 2 and base[2] in VOWELS:
        start = 2
    first = next((i for i in range(start, len(base)) if base[i] in VOWELS), None)
    if first is None:
        return None
    last = first
    while last + 1 < len(base) and base[last + 1] in VOWELS:
        last += 1
    nucleus = base[first:last + 1]
    marked = [i for i in range(last, first - 1, -1) if base[i] in QUALITY_VOWELS]
    if marked:
        return marked[0]  # the last marked vowel: ươ -> ơ, uyê -> ê
    if last + 1 < len(base):  # closed syllable: the last vowel (hoàn, toán, thuyết)
        return last
    if len(nucleus) == 1:
        return first
    if len(nucleus) == 3:
        return first + 1
    if nucleus in ("oa", "oe", "uy"):
        return last
    return first


class _CharFolding(dict):
    """str.translate table folding one character to one character (so offsets stay valid)."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        folded = fold(char) if not char.isdigit() else char
        value = folded if len(folded) == 1 else char.lower() if len(char.lower()) == 1 else char
        self[code] = value
        return value


_CHAR_FOLDING = _CharFolding()


def fold_text(text: str) -> str:
    """`text` (NFC) folded character by character: same length, so a match's offsets in the
    folded text are its offsets in the original."""
    return text.translate(_CHAR_FOLDING)


def exact_tokens(text: str) -> list[str]:
    return [exact(w) for w, _, _ in words(nfc(text))]


def folded_tokens(text: str) -> list[str]:
    return [fold(w) for w, _, _ in words(nfc(text))]


def has_marks(token: str) -> bool:
    """True when `token` carries any Vietnamese mark (so the user typed the exact form)."""
    return fold(token) != token.lower()
