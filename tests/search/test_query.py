"""The query language: every input gives a plan, with a Vietnamese message when it was fixed up."""
import datetime as dt

from search.query import MAX_CLAUSES, parse


def test_words_phrases_and_fields():
    plan = parse('đất đai "bồi thường" case:KN-2025-031 point:"Hòa Bình" from:2024 to:2024-06')
    assert [c.kind for c in plan.clauses] == ["word", "word", "phrase"]
    assert plan.clauses[2].folded == ("boi", "thuong")
    assert plan.filters["case"] == ["kn", "2025", "031"]
    assert plan.filters["point"] == ["hoa", "binh"]
    assert plan.filters["date_from"] == dt.date(2024, 1, 1)
    assert plan.filters["date_to"] == dt.date(2024, 6, 30)
    assert plan.adjacent == [(0, 1)]
    assert plan.messages == []


def test_unbalanced_quote_searches_words_with_a_message():
    plan = parse('thu hồi "đất đai')
    assert [c.kind for c in plan.clauses] == ["word"] * 4
    assert "ngoặc kép" in plan.messages[0]


def test_unknown_field_is_read_as_words():
    plan = parse("password:secret đất")
    assert [c.folded for c in plan.clauses] == [("password",), ("secret",), ("dat",)]
    assert "Không có trường" in plan.messages[0]


def test_time_of_day_is_not_a_field():
    plan = parse("10:30")
    assert plan.messages == [] and [c.folded[0] for c in plan.clauses] == ["10", "30"]


def test_empty_and_punctuation_only():
    for text in ("", "   ", "?!... ,,", '""'):
        plan = parse(text)
        assert plan.empty and plan.messages, text


def test_leading_wildcard_is_dropped_and_trailing_is_a_prefix():
    plan = parse("*hồi bồi*")
    assert [c.kind for c in plan.clauses] == ["word", "prefix"]
    assert "ký tự đại diện" in plan.messages[0]


def test_long_query_is_cut():
    plan = parse("đất " * 500)
    assert len(plan.clauses) == MAX_CLAUSES
    assert any("quá dài" in m for m in plan.messages)


def test_backwards_dates_are_swapped_and_bad_dates_dropped():
    plan = parse("x", date_from="2025-12-31", date_to="2025-01-01")
    assert plan.filters["date_from"] < plan.filters["date_to"]
    assert "ngược" in plan.messages[0]
    plan = parse("x", date_from="31/02/2025", date_to="hôm qua")
    assert "date_from" not in plan.filters and "date_to" not in plan.filters
    assert len(plan.messages) == 2


def test_numbers_get_their_spoken_readings():
    plan = parse("2025")
    assert ("hai", "nghin", "khong", "tram", "hai", "muoi", "lam") in plan.clauses[0].alternatives
    phrase = parse('"năm 2025"').clauses[0]
    assert ("nam", "hai", "ngan", "khong", "tram", "hai", "muoi", "lam") in phrase.alternatives
