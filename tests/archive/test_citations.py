"""Citations: the block, the code, checking it, and checks that fail once the archive is tampered
with; and the `tcd cite` / `tcd transcript --format docx` command lines."""
from __future__ import annotations

import io
import json
from functools import partial

import pytest
from docx import Document

from archive.citations import check, cite, citation_code, normalize_code, passage_digest
from archive.corrections import Edit, correct
from archive.errors import IntegrityError, InvalidInput, NotFound
from archive.transcripts import save_transcript

from ..helpers import add_recording, flip_byte, tcd

SEGMENTS = [
    {"start": 0.5, "end": 2.0, "speaker": "Chủ trì", "text": "Mời bà trình bày.", "words": []},
    {"start": 2.5, "end": 6.25, "speaker": "Bà Trần Thị Bình", "text": "Tôi khiếu nại việc thu hồi đất.", "words": []},
    {"start": 6.5, "end": 9.75, "speaker": "Bà Trần Thị Bình", "text": "Tiền bồi thường chưa thỏa đáng.", "words": []},
    {"start": 10.0, "end": 12.0, "speaker": "Chủ trì", "text": "Chúng tôi ghi nhận.", "words": []},
]


@pytest.fixture
def rec(archive, tmp_path):
    recording = add_recording(archive, tmp_path / "a.mp4",
                              {"title": "Tiếp công dân tháng 3", "held_on": "2025-03-14", "case_code": "KN-17"},
                              content=b"a reception session" * 64, media_type="video/mp4", duration=12.0)
    save_transcript(archive, recording.id, SEGMENTS, kind="machine", author="vosk", engine="vosk")
    return recording


def test_the_citation_block_quotes_the_passage_with_its_source_and_code(archive, rec):
    citation = cite(archive, rec.session_id, "00:00:03", 7.0, actor="hoa")
    lines = citation.block().splitlines()
    assert lines == [
        "“Tôi khiếu nại việc thu hồi đất. Tiền bồi thường chưa thỏa đáng.”",
        "Người nói: Bà Trần Thị Bình",
        f"Phiên {rec.session_id}: Tiếp công dân tháng 3, ngày 14 tháng 3 năm 2025",
        f"Thời điểm 00:00:02–00:00:10 của bản ghi {rec.id}, bản ghi lời phiên bản 1",
        f"Mã trích dẫn: {citation.code}",
    ]
    # The span is whole segments: from the first one's start to the last one's end.
    assert (citation.start, citation.end, citation.version) == (2.5, 9.75, 1)
    digest = passage_digest(SEGMENTS[1:3])
    assert citation.code == citation_code(rec.original_sha256, 1, 2.5, 9.75, digest)
    entry = archive.catalog.audit_entries(session_id=rec.session_id)[-1]
    assert (entry["actor"], entry["action"], json.loads(entry["detail"])["code"]) == \
           ("hoa", "citation.issue", citation.code)


def test_several_speakers_are_quoted_turn_by_turn(archive, rec):
    citation = cite(archive, rec.id, 0, 12, actor="hoa")
    assert citation.quote_lines() == ["“Chủ trì: Mời bà trình bày.",
                                      "Bà Trần Thị Bình: Tôi khiếu nại việc thu hồi đất. Tiền bồi thường chưa thỏa đáng.",
                                      "Chủ trì: Chúng tôi ghi nhận.”"]
    assert citation.speakers == ["Chủ trì", "Bà Trần Thị Bình"]


def test_the_code_depends_on_the_version_and_the_span_and_citing_again_gives_the_same(archive, rec):
    first = cite(archive, rec.id, 3, 7)
    assert cite(archive, rec.id, 2.6, 9.0).code == first.code          # the same segments
    assert cite(archive, rec.id, 3, 11).code != first.code             # one more segment
    correct(archive, rec.id, 1, [Edit(3, text="Chúng tôi ghi nhận ý kiến.")], author="hoa")
    assert cite(archive, rec.id, 3, 7, version=2).code != first.code   # same words, other version
    assert cite(archive, rec.id, 3, 7, version=1).code == first.code
    assert normalize_code(first.code.lower().replace("-", " ")) == first.code


def test_a_citation_checks_and_says_whether_a_newer_version_changed_the_passage(archive, rec):
    code = cite(archive, rec.id, 3, 7, actor="hoa").code
    result = check(archive, code, actor="thanh.tra")
    assert result.ok and result.newer == [] and result.current_version == 1
    assert result.quote == "Tôi khiếu nại việc thu hồi đất. Tiền bồi thường chưa thỏa đáng."
    assert "It is the newest version" in result.sentence()

    correct(archive, rec.id, 1, [Edit(3, speaker="Ông Nguyễn Văn An")], author="hoa")  # elsewhere
    result = check(archive, code)
    assert result.ok and result.newer[0]["version"] == 2 and result.changed_in == []

    correct(archive, rec.id, 2, [Edit(2, text="Tiền bồi thường chưa thỏa đáng, còn chậm.")], author="lan")
    result = check(archive, code)
    assert result.ok and result.changed_in == [3] and result.current_version == 3
    assert result.newer[-1]["quote"].endswith("chưa thỏa đáng, còn chậm.")
    assert "Newer version 3 changed this passage" in result.sentence()
    entry = archive.catalog.audit_entries(session_id=rec.session_id)[-1]
    assert (entry["action"], json.loads(entry["detail"])["ok"]) == ("citation.check", True)


def test_a_code_the_archive_never_issued_is_refused(archive, rec):
    with pytest.raises(NotFound, match="never issued citation code AAAA-BBBB-CCCC"):
        check(archive, "aaaa-bbbb-cccc")
    with pytest.raises(InvalidInput, match="is not a citation code"):
        check(archive, "TCD-2025")


def test_a_flipped_byte_in_the_stored_transcript_stops_the_check(archive, rec):
    code = cite(archive, rec.id, 3, 7).code
    flip_byte(archive.store.path(archive.catalog.get_transcript(rec.id, 1).sha256))
    result = check(archive, code)
    assert not result.ok and result.problems == ["object_changed"]
    assert "does NOT check" in result.sentence()
    # Nor can that version be cited any more.
    with pytest.raises(IntegrityError, match="does not match its SHA-256"):
        cite(archive, rec.id, 0, 1)


@pytest.mark.parametrize("sql, args, problem", [
    # the catalog's copy of the transcript rewritten (what the web pages show)
    ("UPDATE transcripts SET segments = replace(segments, 'thu hồi đất', 'thu hồi nhà') WHERE version = 1",
     (), "catalog_copy_changed"),
    # the quoted text kept with the citation rewritten
    ("UPDATE citations SET quote = replace(quote, 'chưa', 'đã')", (), "quote_changed"),
    # the span moved
    ("UPDATE citations SET end = 12.0", (), "code_mismatch"),
    # the digest replaced by that of other words
    ("UPDATE citations SET quote_sha256 = ?", ("0" * 64,), "code_mismatch"),
    # the version pointed at another stored object
    ("UPDATE transcripts SET sha256 = (SELECT original_sha256 FROM recordings) WHERE version = 1",
     (), "object_replaced"),
])
def test_a_changed_catalog_row_stops_the_check(archive, rec, sql, args, problem):
    code = cite(archive, rec.id, 3, 7).code
    archive.catalog.db.execute(sql, args)
    result = check(archive, code)
    assert not result.ok and problem in result.problems


def test_a_rewritten_object_with_its_catalog_row_moved_along_is_caught(archive, rec):
    """Someone replaces the version's object and repoints the citation at it: the passage
    differs from what the code commits to."""
    code = cite(archive, rec.id, 3, 7).code
    forged = [dict(s) for s in SEGMENTS]
    forged[1]["text"] = "Tôi không khiếu nại gì."
    fake = save_transcript(archive, rec.id, forged, kind="machine", author="x")
    archive.catalog.db.execute("UPDATE citations SET transcript_sha256 = ?", (fake.sha256,))
    archive.catalog.db.execute("UPDATE transcripts SET sha256 = ? WHERE version = 1", (fake.sha256,))
    result = check(archive, code)
    assert "passage_changed" in result.problems and "Tôi không khiếu nại gì." in result.quote


def test_a_missing_object_or_recording_is_reported(archive, rec):
    code = cite(archive, rec.id, 3, 7).code
    archive.store.delete(archive.catalog.get_transcript(rec.id, 1).sha256)
    assert check(archive, code).problems == ["object_missing"]
    archive.catalog.db.execute("UPDATE citations SET recording_id = 'ffffffffffffffff'")
    result = check(archive, code)
    assert result.problems == ["recording_missing"] and result.quote.startswith("Tôi khiếu nại")


@pytest.mark.parametrize("start, end, message", [
    (7, 3, "ends .* before it starts"),
    (12.5, 20, "no text between 00:00:12 and 00:00:20"),
    ("ba phút", 4, "'ba phút' is not a time"),
    (-1, 4, "is not a time in the recording"),
])
def test_a_span_that_names_no_passage_is_refused(archive, rec, start, end, message):
    with pytest.raises(InvalidInput, match=message):
        cite(archive, rec.id, start, end)
    assert archive.catalog.citations_for_recording(rec.id) == []


def test_a_moment_between_two_segments_cites_nothing_but_one_inside_a_segment_cites_it(archive, rec):
    with pytest.raises(InvalidInput):
        cite(archive, rec.id, 2.2, 2.2)
    assert cite(archive, rec.id, 3, 3).passage == [SEGMENTS[1]]


# -- the command line ----------------------------------------------------------------------------

run = partial(tcd, catch_exceptions=False)


def test_tcd_cite_then_check_then_tamper(archive, home, rec, tmp_path):
    made = run(home, "cite", rec.session_id, "--start", "3", "--end", "00:00:07")
    assert made.exit_code == 0, made.output
    lines = made.output.strip().splitlines()
    assert lines[-1].startswith("Mã trích dẫn: ")
    code = lines[-1].removeprefix("Mã trích dẫn: ")

    checked = run(home, "cite", "--check", code)
    assert checked.exit_code == 0 and f"Citation {code} checks" in checked.output
    assert "Tôi khiếu nại việc thu hồi đất." in checked.output
    as_json = json.loads(run(home, "cite", "--check", code, "--json").output)
    assert as_json["ok"] is True and as_json["version"] == 1 and as_json["time_range"] == "00:00:02–00:00:10"

    docx_file = tmp_path / "trich-dan.docx"
    made = run(home, "cite", rec.session_id, "--start", "3", "--end", "7", "--format", "docx", "-o", str(docx_file))
    assert made.exit_code == 0
    paragraphs = [p.text for p in Document(str(docx_file)).paragraphs]
    assert paragraphs[-1] == f"Mã trích dẫn: {code}" and "Tôi khiếu nại" in paragraphs[1]

    flip_byte(archive.store.path(archive.catalog.get_transcript(rec.id, 1).sha256))
    tampered = run(home, "cite", "--check", code)
    assert tampered.exit_code == 1 and "does NOT check" in tampered.output

    unknown = run(home, "cite", "--check", "AAAA-BBBB-CCCC")
    assert unknown.exit_code == 1 and "never issued" in unknown.output


def test_tcd_cite_usage_errors_exit_2(home, rec):
    assert run(home, "cite", rec.session_id, "--start", "3").exit_code == 2
    assert run(home, "cite", rec.session_id, "--start", "3", "--end", "4", "--format", "docx").exit_code == 2
    assert run(home, "cite", rec.session_id, "--check", "AAAA-BBBB-CCCC").exit_code == 2


def test_tcd_transcript_docx_of_any_version_and_diff(archive, home, rec, tmp_path):
    correct(archive, rec.id, 1, [Edit(1, text="Tôi khiếu nại việc thu hồi đất ở.")], author="hoa")
    out = tmp_path / "bien-ban.docx"
    done = run(home, "transcript", rec.session_id, "--format", "docx", "--version", "1", "-o", str(out))
    assert done.exit_code == 0, done.output
    doc = Document(io.BytesIO(out.read_bytes()))
    assert "[00:00:02] Bà Trần Thị Bình: Tôi khiếu nại việc thu hồi đất." in [p.text for p in doc.paragraphs]
    assert run(home, "transcript", rec.session_id, "--format", "docx").exit_code == 2
    entry = archive.catalog.audit_entries(session_id=rec.session_id)[-1]
    assert entry["action"] == "download" and json.loads(entry["detail"])["format"] == "docx"

    diff = run(home, "transcript", "diff", rec.session_id)
    assert diff.exit_code == 0
    assert "version 1 -> version 2, 1 segments differ" in diff.output
    assert "thu hồi đất. {+ở.+}" not in diff.output and "[-đất.-] {+đất ở.+}" in diff.output


def test_tcd_cite_list_shows_the_codes_issued_for_a_session_or_a_recording(home, rec):
    empty = run(home, "cite", "--list", rec.session_id)
    assert empty.exit_code == 0 and f"No citation has been issued for {rec.session_id} yet." in empty.output
    code = run(home, "cite", rec.session_id, "--start", "3", "--end", "7").output.strip().splitlines()[-1]
    code = code.removeprefix("Mã trích dẫn: ")
    for item in (rec.session_id, rec.id):
        listed = run(home, "cite", "--list", item)
        assert listed.exit_code == 0
        [line] = listed.output.strip().splitlines()
        assert line.startswith(code) and f"recording {rec.id} v1 00:00:02–00:00:10" in line
        assert "Tôi khiếu nại" in line
    [row] = json.loads(run(home, "cite", "--list", rec.id, "--json").output)
    assert row["code"] == code and row["version"] == 1
    assert run(home, "cite", "--list").exit_code == 2
    assert run(home, "cite", "--list", rec.id, "--check", code).exit_code == 2
    missing = tcd(home, "cite", "--list", "TCD-1999-0001")
    assert missing.exit_code == 1 and "TCD-1999-0001" in missing.output
