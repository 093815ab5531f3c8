"""Minutes benchmark: the size and generation time of the DOCX minutes ("biên bản") of a 3-hour
session, next to the other export formats and a citation of that session.

    .venv/bin/python bench/minutes.py [--hours 3] [--segments 2500] [--runs 3]

The transcript is synthetic (seeded): `--segments` segments spread over `--hours`, each 10-30
syllables drawn from a small vocabulary, with word times, four speakers taking
turns. Figures: median wall time of `export(..., "docx")` (catalog read + layout + zip), the file
size, the time python-docx takes to open it again, and the peak RSS of the process.

Baseline in the same run: python-docx alone writing the same time-coded, speaker-labelled lines
from segments already in memory (one plain paragraph each, no catalog, heading, facts table or
styled runs) — the least any DOCX minutes made with that library cost; the ratio to it is what
the archive's reading and layout add. The plain-text export's ratio is printed too.
"""
from __future__ import annotations

import argparse
import io
import random
import resource
import statistics
import sys
import time
from pathlib import Path

from common import print_ratio, work_folder

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from docx import Document  # noqa: E402

from archive import open_archive  # noqa: E402
from archive.citations import cite  # noqa: E402
from archive.minutes import clock, export  # noqa: E402
from archive.transcripts import save_transcript  # noqa: E402

# Syllables of citizen reception speech; the minutes' cost depends on the amount of text, not on
# which words it holds.
VOCABULARY = """và của có là không được các cho những một người trong với đã này để đến thì về
cũng như khi đó ra lại theo việc từ nhân dân tôi chúng ta đây nhưng vì làm ở ý kiến nội dung
công dân tiếp giải quyết khiếu nại tố cáo kiến nghị phản ánh đất đai thu hồi bồi thường hỗ trợ
tái định cư quyền sử dụng giấy chứng nhận ủy ban xã huyện tỉnh thành phố sở tài nguyên môi
trường thanh tra chủ tịch phó trưởng phòng ban cán bộ quy định pháp luật nghị định quyết định
văn bản hồ sơ đơn thư gia đình hộ diện tích mét vuông giá tiền đồng triệu nghìn trăm tháng ngày
đề nghị trả lời xem xét kiểm tra xác minh kết luận báo cáo thời hạn cơ quan địa phương""".split()
SPEAKERS = ["Chủ trì", "Bà Trần Thị Bình", "Điểm cầu huyện Quỳnh Lưu", "Ông Lê Văn Hải"]


def synthetic_segments(hours: float, count: int, seed: int = 42) -> list[dict]:
    rng = random.Random(seed)
    span = hours * 3600 / count
    segments, speaker = [], SPEAKERS[0]
    for i in range(count):
        start = round(i * span + 0.2, 3)
        end = round((i + 1) * span - 0.1, 3)
        words = [rng.choice(VOCABULARY) for _ in range(rng.randint(10, 30))]
        step = (end - start) / len(words)
        if rng.random() < 0.3:
            speaker = rng.choice(SPEAKERS)
        segments.append({"start": start, "end": end, "speaker": speaker, "text": " ".join(words),
                         "words": [{"w": w, "start": round(start + k * step, 3),
                                    "end": round(start + (k + 1) * step, 3), "conf": 0.9}
                                   for k, w in enumerate(words)]})
    return segments


def bare_docx(segments: list[dict]) -> bytes:
    """The baseline: the minutes' transcript lines written by python-docx alone."""
    doc = Document()
    for seg in segments:
        doc.add_paragraph(f"[{clock(seg['start'])}] {seg['speaker']}: {seg['text']}")
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def timed(fn, runs: int):
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--segments", type=int, default=2500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with work_folder("minutes") as tmp:
        archive = open_archive(tmp / "tcd-data", env={})
        original = tmp / "original.bin"
        original.write_bytes(b"stand-in for a 3-hour recording" * 100)
        stored = archive.store.put_file(original)
        archive.catalog.add_object(stored.sha256, stored.size, "original", "video/mp4")
        session = archive.catalog.create_session({
            "title": "Tiếp công dân định kỳ tháng 3", "held_on": "2025-03-14", "case_code": "KN-2025-017",
            "chair": "Ông Nguyễn Văn Đức", "central_point": "Trụ sở Tiếp công dân tỉnh",
            "delegate_points": ["UBND huyện Quỳnh Lưu"], "complainants": ["Bà Trần Thị Bình", "Ông Lê Văn Hải"]})
        rec = archive.catalog.add_recording(session_id=session.id, original_sha256=stored.sha256,
                                            original_name="phien.mp4", duration=args.hours * 3600,
                                            has_audio=True)
        segments = synthetic_segments(args.hours, args.segments)
        save_transcript(archive, rec.id, segments, kind="machine", author="vosk", engine="vosk")
        words = sum(len(s["text"].split()) for s in segments)
        print(f"transcript: {len(segments)} segments, {words} syllables, {args.hours:g} h")

        took = {}
        for fmt in ("txt", "srt", "vtt", "json", "docx"):
            took[fmt], (exported, _) = timed(lambda: export(archive, rec.id, None, fmt), args.runs)
            print(f"{fmt:>5}: {len(exported.body):>10,} bytes  {took[fmt] * 1000:8.0f} ms"
                  f"  (median of {args.runs})")
        bare_seconds, bare = timed(lambda: bare_docx(segments), args.runs)
        print(f"baseline, python-docx alone writing the same lines: {len(bare):,} bytes  "
              f"{bare_seconds * 1000:.0f} ms  (median of {args.runs})")
        print_ratio("the DOCX minutes", took["docx"], "python-docx alone", bare_seconds)
        print_ratio("the DOCX minutes", took["docx"], "the plain-text export", took["txt"])
        body = export(archive, rec.id, None, "docx")[0].body
        seconds, doc = timed(lambda: Document(io.BytesIO(body)), 1)
        print(f"python-docx opens it in {seconds * 1000:.0f} ms: {len(doc.paragraphs)} paragraphs")
        middle = args.hours * 1800
        seconds, citation = timed(lambda: cite(archive, rec.id, middle, middle + 30), args.runs)
        print(f"cite 30 s in the middle: {seconds * 1000:.0f} ms ({len(citation.passage)} segments)")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS: {peak:.0f} MB")
        archive.catalog.close()


if __name__ == "__main__":
    main()
