"""Searching a real archive: sessions made through the catalog, indexed by real Whoosh."""
import re
import unicodedata

import pytest

from search import Hit, SearchResult, open_index

from .conftest import seg


@pytest.fixture
def corpus(archive, make_session):
    a, _ = make_session("Khiếu nại thu hồi đất xã Hòa Bình", "2025-03-14", [
        seg(1.0, "Tôi khiếu nại việc thu hồi đất đai của gia đình trên mảnh đất cũ"),
        seg(10.0, "Giấy chứng nhận quyền sử dụng đất đai đã cấp năm hai nghìn không trăm hai mươi lăm"),
        seg(20.0, "Ông Đức là người làm chứng"),
        seg(30.0, "Số tiền bồi thường là một trăm hai mươi ba triệu đồng")],
        case_code="KN-2025-031", category="a", complainants=["Trần Văn Hùng"],
        central_point="Ban Tiếp công dân tỉnh", delegate_points=["UBND xã Hòa Bình"])
    b, _ = make_session("Phản ánh môi trường sông", "2025-06-01", [
        seg(2.0, "Thuyền dạt dài theo dòng sông"),
        seg(8.0, "Chuyện giáo dục ở địa phương và nước đục"),
        seg(15.0, "Hoà giải ở xã Thuỷ Nguyên", words=False),
        seg(30.0, "Nội dung <script>alert('x')</script> trong đơn")], category="b")
    c, _ = make_session("Kiến nghị về trường học", "2023-09-09", [
        seg(3.0, "Năm hai nghìn không trăm lẻ năm xây trường"),
        seg(9.0, "hai ngàn không trăm hai mươi năm sửa lại"),
        seg(15.0, "Bà Nguyễn Thị Hòa trình bày"),
        seg(20.0, "đất ở khu đai lớn")], case_code="KN-2023-002", category="c")
    d, _ = make_session("Tranh chấp đất đai", "2022-01-10", [seg(5.0, "tranh chấp đất đai giữa hai hộ")],
                        category="a")
    index = open_index(archive)
    index.sync()
    return index, {"a": a.id, "b": b.id, "c": c.id, "d": d.id}


def passages(result):
    return [h for h in result.hits if h.recording_id]


def test_result_shape(corpus):
    index, ids = corpus
    result = index.search("đất đai")
    assert isinstance(result, SearchResult) and all(isinstance(h, Hit) for h in result.hits)
    data = result.to_dict()
    assert data["total"] == result.total and data["page"] == 1
    assert set(data["hits"][0]) >= {"session_id", "session", "title", "held_on", "recording_id", "start",
                                    "end", "speaker", "snippet", "score"}


@pytest.mark.parametrize("query", ["dat dai", "ĐẤT ĐAI", "Đất Đai", "đất đai"])
def test_any_typing_finds_dat_dai(corpus, query):
    index, ids = corpus
    result = index.search(query)
    hit = next(h for h in result.hits if h.session_id == ids["a"])
    assert "<mark>đất</mark> <mark>đai</mark>" in hit.snippet
    assert hit.start == 4.0  # "đất" is the seventh word of the segment at 1.0 s


def test_unmarked_query_ranks_the_frequent_reading_first(corpus):
    index, ids = corpus
    sessions = [h.session_id for h in passages(index.search("dat dai"))]
    assert ids["b"] in sessions  # "dạt dài" is found too
    assert sessions.index(ids["a"]) < sessions.index(ids["b"])  # though B is newer


def test_duc_finds_ong_duc_and_the_marked_form_ranks_it_first(corpus):
    index, ids = corpus
    folded = passages(index.search("duc"))
    assert {ids["a"], ids["b"]} <= {h.session_id for h in folded}  # đức and dục / đục
    first = passages(index.search("Đức"))[0]
    assert first.session_id == ids["a"]
    assert "Ông <mark>Đức</mark>" in first.snippet and first.start == 20.5


def test_nfd_query_finds_nfc_text_and_the_reverse(archive, corpus, make_session):
    index, ids = corpus
    nfd = unicodedata.normalize("NFD", "thu hồi đất")
    assert ids["a"] in {h.session_id for h in index.search(nfd).hits}
    s, _ = make_session("NFD", "2025-02-02", [seg(0.0, unicodedata.normalize("NFD", "giải phóng mặt bằng"))])
    index.sync()
    hit = passages(index.search("giải phóng"))[0]
    assert hit.session_id == s.id and "<mark>" in hit.snippet


@pytest.mark.parametrize("query", ["hoà", "hòa", "HÒA"])
def test_old_and_new_tone_placement_find_each_other(corpus, query):
    index, ids = corpus
    sessions = {h.session_id for h in passages(index.search(query))}
    assert {ids["b"], ids["c"]} <= sessions  # "Hoà giải" and "Nguyễn Thị Hòa"


def test_thuy_tone_placement_and_segment_without_words(corpus):
    index, ids = corpus
    hit = passages(index.search("thủy"))[0]
    assert hit.session_id == ids["b"] and "<mark>Thuỷ</mark>" in hit.snippet
    assert hit.start == 15.0  # no word timestamps: the segment's start


def test_digits_find_numbers_said_in_words(corpus):
    index, ids = corpus
    found = {(h.session_id, h.start) for h in passages(index.search("2025"))}
    assert (ids["a"], 15.5) in found   # "hai nghìn không trăm hai mươi lăm"
    assert (ids["c"], 9.0) in found    # "hai ngàn không trăm hai mươi năm"
    assert [(h.session_id, h.start) for h in passages(index.search("2005"))] == [(ids["c"], 3.5)]  # "lẻ năm"
    hit = passages(index.search("123"))[0]
    assert hit.session_id == ids["a"] and hit.start == 32.5
    assert "<mark>một trăm hai mươi ba</mark>" in hit.snippet


def test_quoted_phrase_needs_the_words_together_and_marks_only_the_phrase(corpus):
    index, ids = corpus
    assert ids["c"] in {h.session_id for h in index.search("đất đai").hits}  # "đất ở khu đai"
    result = index.search('"đất đai"')
    assert ids["c"] not in {h.session_id for h in result.hits}
    hit = next(h for h in result.hits if h.session_id == ids["a"])
    marks = re.findall(r"<mark>(.*?)</mark>", hit.snippet)
    assert marks and set(marks) == {"đất đai"}  # never the lone "mảnh đất cũ"


def test_phrase_hit_starts_at_its_first_word(corpus):
    index, ids = corpus
    hit = passages(index.search('"thu hồi đất"'))[0]
    assert hit.session_id == ids["a"] and hit.start == 3.0 and hit.end == 8.5
    assert "<mark>thu hồi đất</mark>" in hit.snippet and hit.speaker == "Công dân"


def test_words_typed_side_by_side_start_where_said_together(archive, corpus, make_session):
    index, _ = corpus
    s, _ = make_session("Đại biểu", "2026-01-05", [
        seg(0.0, "Đại biểu hỏi về đất ở"),
        seg(10.0, "rồi nói tranh chấp đất đai kéo dài")])
    index.sync()
    hit = next(h for h in passages(index.search("dat dai")) if h.session_id == s.id)
    assert hit.start == 12.0  # "đất đai" said together, not the lone "Đại" at 0.0
    assert "<mark>đất</mark> <mark>đai</mark>" in hit.snippet
    alone = next(h for h in passages(index.search("bieu dat")) if h.session_id == s.id)
    assert alone.start == 0.5  # never said together: the first word that matched


def test_date_filter_excludes_other_years(corpus):
    index, ids = corpus
    everywhere = {h.session_id for h in index.search("hai").hits}
    assert {ids["a"], ids["c"], ids["d"]} <= everywhere
    in_2025 = index.search("hai", date_from="2025-01-01", date_to="2025-12-31")
    assert {h.session_id for h in in_2025.hits} == {ids["a"]}
    assert all(h.held_on.startswith("2025") for h in in_2025.hits)


def test_script_comes_back_escaped(corpus):
    index, ids = corpus
    hit = passages(index.search("alert"))[0]
    assert "<script>" not in hit.snippet
    assert "&lt;script&gt;<mark>alert</mark>" in hit.snippet


def test_metadata_hits_start_at_zero(corpus):
    index, ids = corpus
    hit = index.search("Hùng").hits[0]
    assert (hit.session_id, hit.start, hit.recording_id) == (ids["a"], 0.0, "")
    assert "<mark>Hùng</mark>" in hit.snippet
    case_hit = index.search("KN-2023-002").hits[0]
    assert case_hit.session_id == ids["c"]


def test_words_may_match_the_session_metadata(corpus):
    index, ids = corpus
    hits = passages(index.search("Hùng giấy chứng nhận"))
    assert hits and hits[0].session_id == ids["a"] and hits[0].start == 10.0


@pytest.mark.parametrize("filters,expected", [
    ({"case": "KN-2025-031"}, {"a"}), ({"category": "a"}, {"a", "d"}),
    ({"point": "xã Hòa Bình"}, {"a"}), ({"complainant": "tran van hung"}, {"a"})])
def test_filters(corpus, filters, expected):
    index, ids = corpus
    assert {h.session_id for h in index.search("đất", **filters).hits} == {ids[k] for k in expected}


def test_filters_alone_list_sessions_by_date(corpus):
    index, ids = corpus
    result = index.search("", category="a")
    assert [h.session_id for h in result.hits] == [ids["a"], ids["d"]]


def test_sort_by_date_and_pages(corpus):
    index, ids = corpus
    by_date = index.search("đất", sort="date")
    dates = [h.held_on for h in by_date.hits]
    assert dates == sorted(dates, reverse=True)
    page2 = index.search("đất", sort="date", page=2, limit=1)
    assert page2.total == by_date.total and page2.hits[0].session_id == by_date.hits[1].session_id
    beyond = index.search("đất", page=50)
    assert beyond.hits == [] and beyond.messages


@pytest.mark.parametrize("query,kwargs,fragment,answered_as", [
    ('"thu hồi đất', {}, "ngoặc kép", ("thu hồi đất", {})),
    ("secret:đất", {}, "Không có trường", ("secret đất", {})),
    ("", {}, "Hãy nhập", None),
    ("?!..., ;", {}, "Hãy nhập", None),
    ("đất " * 500, {}, "quá dài", ("đất", {})),
    ("hai", {"date_from": "2025-12-31", "date_to": "2025-01-01"}, "ngược",
     ("hai", {"date_from": "2025-01-01", "date_to": "2025-12-31"})),
    ("đất", {"date_from": "ngày mai"}, "Không hiểu ngày", ("đất", {})),
    ("*đất", {}, "ký tự đại diện", ("đất", {})),
    ("đất", {"sort": "random"}, "sắp xếp", ("đất", {})),
])
def test_bad_queries_get_an_answer_with_a_message(corpus, query, kwargs, fragment, answered_as):
    index, ids = corpus
    result = index.search(query, **kwargs)
    assert any(fragment in m for m in result.messages), result.messages
    # answered as the query it reads as (or nothing at all)
    expected = index.search(answered_as[0], **answered_as[1]).total if answered_as else 0
    assert result.total == expected
    if "ngược" in fragment:
        assert {h.session_id for h in result.hits} == {ids["a"]}
    if "ngoặc" in fragment:
        assert ids["a"] in {h.session_id for h in result.hits}


def test_prefix_search(corpus):
    index, ids = corpus
    hit = passages(index.search("bồi*"))[0]
    assert hit.session_id == ids["a"] and "<mark>bồi</mark>" in hit.snippet
