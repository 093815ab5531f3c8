"""Vietnamese analysis and numbers said aloud: pure functions, no index."""
import unicodedata

import pytest

from search.analysis import exact, fold, fold_text, folded_tokens, has_marks, words
from search.numbers import parse_spoken, spoken_forms


@pytest.mark.parametrize("text,folded", [("Đất Đai", ["dat", "dai"]), ("ĐẤT ĐAI", ["dat", "dai"]),
                                         ("ông Đức", ["ong", "duc"]), ("Nguyễn Thị Hoà", ["nguyen", "thi", "hoa"])])
def test_folding_drops_every_mark_and_d_stroke(text, folded):
    assert folded_tokens(text) == folded


def test_nfd_text_tokenises_like_nfc():
    nfd = unicodedata.normalize("NFD", "khiếu nại đất đai")
    assert folded_tokens(nfd) == ["khieu", "nai", "dat", "dai"]
    assert [w for w, _, _ in words(unicodedata.normalize("NFC", nfd))] == ["khiếu", "nại", "đất", "đai"]


@pytest.mark.parametrize("old,new", [("hoà", "hòa"), ("thuỷ", "thủy"), ("khoẻ", "khỏe"), ("uỷ", "ủy"),
                                     ("Hoà", "HÒA")])
def test_old_and_new_tone_placement_are_one_exact_form(old, new):
    assert exact(old) == exact(new)


@pytest.mark.parametrize("a,b", [("đức", "dục"), ("đất", "dạt"), ("hoà", "hoa"), ("mùa", "múa")])
def test_exact_forms_keep_different_words_apart(a, b):
    assert exact(a) != exact(b)
    assert fold(a) == fold(b)


def test_fold_text_keeps_offsets():
    text = "Ông ĐỨC: 1.500.000 đồng, 한국어"
    folded = fold_text(text)
    assert len(folded) == len(text)
    assert folded.startswith("ong duc: 1.500.000 dong")


def test_digit_groups_are_one_token():
    assert folded_tokens("1.500.000 đồng") == ["1500000", "dong"]
    assert has_marks("Đức") and not has_marks("duc")


@pytest.mark.parametrize("digits,said", [
    ("2025", "hai nghìn không trăm hai mươi lăm"), ("2025", "hai ngàn không trăm hai mươi lăm"),
    ("2025", "hai nghìn hai mươi lăm"), ("2005", "hai nghìn không trăm lẻ năm"),
    ("2005", "hai nghìn không trăm linh năm"), ("123", "một trăm hai mươi ba"), ("15", "mười lăm"),
    ("21", "hai mươi mốt"), ("24", "hai mươi tư"), ("105", "một trăm linh năm"), ("2025", "hai không hai năm"),
    ("1500000", "một triệu năm trăm nghìn")])
def test_numbers_have_their_spoken_forms(digits, said):
    assert folded_tokens(said) in spoken_forms(digits)
    assert parse_spoken(said.split()) == int(digits)


def test_spoken_forms_are_bounded_and_reject_non_numbers():
    assert len(spoken_forms("999999999")) <= 64
    assert spoken_forms("") == []
    assert parse_spoken(["đất", "đai"]) is None


@pytest.mark.parametrize("said,found", [
    ("ngày mười lăm tháng ba năm hai nghìn không trăm hai mươi lăm", ["15", "2025"]),
    ("một trăm hai mươi ba triệu đồng", ["123000000", "123"]),
    ("năm hai nghìn không trăm lẻ năm", ["2005"]), ("hai không hai năm", ["2025"]),
    ("có hai ba người", []), ("trăm hai", [])])
def test_numbers_said_in_words_are_found_in_text(said, found):
    from search.numbers import spoken_numbers
    assert [digits for _, digits in spoken_numbers(folded_tokens(said))] == found
