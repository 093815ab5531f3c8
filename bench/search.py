"""Search benchmark: the archive's index against SQLite FTS5 on a synthetic Vietnamese corpus.

    .venv/bin/python bench/search.py --hours 200 [--windows 0.001,60,120,300,0] [--fts] [--keep DIR]

The corpus: sessions of 0.5-3 h at about 9,000 syllables an hour, syllables drawn from a Zipf law
over ~400 common Vietnamese syllables (function words first, then the vocabulary of citizen
reception), with people's names, numbers read aloud and dates mixed in; word timestamps on every
segment; the seed is fixed. The index is built by the real `SearchIndex.rebuild()` over a
catalog stand-in that generates each session on demand (a 2,000 h catalog would be ~1 GB of JSON).

For each passage length (`--windows`, seconds; 0.001 means one document per segment, 0 one per
recording) it prints build time, index size and p50/p95/p99 latency of `index.search()` (with
snippets for 20 hits) per query kind; with `--fts` the same for FTS5 (`unicode61
remove_diacritics 2`, one row per segment) and the ratios.
"""
from __future__ import annotations

import argparse
import bisect
import datetime as dt
import itertools
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)  # else "import search" would import this file

from archive.catalog import Recording, Session, Transcript  # noqa: E402
from search import SearchIndex  # noqa: E402
from search.analysis import fold  # noqa: E402
from search.numbers import spoken_forms  # noqa: E402

SYLLABLES_PER_HOUR = 9000
SESSION_HOURS = (0.5, 3.0)
SEED = 20251122

# About 400 common syllables, most frequent first (function words, then the vocabulary of
# citizen reception: land, compensation, complaints, administration). Neighbours in the list
# often make a word ("giải quyết"), which the two-word and phrase queries use.
VOCABULARY: list[str] = list(dict.fromkeys("""
và của có là không được các cho những một người trong với đã này để đến thì về
cũng như khi đó ra lại theo việc từ nhân dân tôi chúng ta đây nhưng vì làm ở
nào sẽ phải rất còn hai năm nên đi đang nói mà thế ông bà anh chị em đồng chí
ý kiến nội dung công tiếp giải quyết khiếu nại tố cáo kiến nghị phản ánh đất đai
thu hồi bồi thường hỗ trợ tái định cư quyền sử dụng giấy chứng nhận ủy ban xã huyện tỉnh
thành phố sở tài nguyên môi trường thanh tra chủ tịch phó trưởng phòng cán bộ
quy pháp luật điều khoản thông tư quyết văn bản hồ sơ đơn thư
gia đình hộ diện tích mét vuông giá tiền đồng triệu nghìn trăm tháng ngày hôm nay
đề trả lời xem xét kiểm xác minh kết luận báo thời gian hạn sau trước
cơ quan vị địa phương chính trung ương lãnh đạo trực tuyến điểm cầu phiên họp
vấn trường hợp thực hiện tổ chức chỉ giao nhiệm vụ trách phối liên
đúng sai lý thỏa đáng khai minh bạch cụ thể rõ ràng đầy đủ kịp nhanh chóng
nhà công trình dự án đường nông nghiệp rừng sông nước điện học bệnh viện
lúc đầu cuối tại sao bao giờ ai gì đâu mình họ
rồi chưa vẫn đều mới thêm nữa hơn nhất lắm quá hết cả mọi nhiều ít khác cùng riêng
biết thấy hiểu muốn cần mong xin cảm ơn chào kính thưa vâng dạ ạ nhé nhỉ
ghi tiếp chuyển trình đối thoại hòa thương lượng tranh chấp cưỡng chế
vi phạm xử kỷ khởi kiện tòa thi hành kiểm sát an điều tra
lấn chiếm xây dựng trái phép cấp đổi sổ đỏ thửa tờ bản đồ ranh giới đo đạc
lương hưu chế độ sách có công binh liệt sĩ bảo hiểm xã hội trợ cấp
sinh giáo viên dục y tế sức khỏe toàn vệ thực phẩm ô nhiễm rác thải
doanh hợp lao động vay ngân hàng thuế phí lệ
dứt ổn cuộc sống dạt dài đức đục
""".split()))

SURNAMES = "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý".split()
MIDDLE = "Văn Thị Hữu Đức Minh Ngọc Thanh Quang Xuân Hồng".split()
GIVEN = ("Đức Hoa Hòa Hoà Thủy Thuỷ Lan Hùng Dũng Tuấn Hương Mai Nam Bình An Khoa Long Phúc "
         "Thảo Trang Linh Cường Hải Sơn Tâm Vinh Quý Khỏe Huệ Loan").split()
PLACES = ("Hòa Bình;Thủy Nguyên;Đông Anh;Thanh Trì;Gia Lâm;Sóc Sơn;Ba Vì;Đan Phượng;"
          "Hoài Đức;Quốc Oai;Thạch Thất;Chương Mỹ").split(";")
CATEGORIES = ["a", "b", "c", "d", "e", "khác"]
WEIGHTS = list(itertools.accumulate(1.0 / (rank + 1) ** 1.05 for rank in range(len(VOCABULARY))))


# -- the corpus ------------------------------------------------------------------------------------

def syllable(rng: random.Random) -> str:
    return VOCABULARY[min(bisect.bisect_left(WEIGHTS, rng.random() * WEIGHTS[-1]), len(VOCABULARY) - 1)]


def name(rng: random.Random) -> str:
    return f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


def spoken(n: int, rng: random.Random) -> str:
    forms = spoken_forms(str(n))
    return " ".join(rng.choice(forms[:-1] if len(forms) > 1 and len(str(n)) == 4 else forms))


def collocated(rng: random.Random) -> list[str]:
    """A syllable, often followed by its neighbour in the vocabulary (a two-syllable word)."""
    first = syllable(rng)
    i = VOCABULARY.index(first)
    if 20 <= i < len(VOCABULARY) - 1 and rng.random() < 0.4:
        return [first, VOCABULARY[i + 1]]
    return [first]


def sentence(rng: random.Random, held_on: dt.date) -> str:
    words = [w for _ in range(rng.randint(6, 28)) for w in collocated(rng)]
    roll, at = rng.random(), rng.randrange(len(words))
    if roll < 0.10:
        words[at:at] = ["ông", *name(rng).split()]
    elif roll < 0.16:
        n = rng.choice([rng.randint(1, 999), rng.randint(1, 999) * 1000, rng.randint(1, 500) * 1_000_000])
        words[at:at] = spoken(n, rng).split()
    elif roll < 0.20:
        day = held_on - dt.timedelta(days=rng.randint(0, 3000))
        words[at:at] = f"ngày {spoken(day.day, rng)} tháng {spoken(day.month, rng)} năm {spoken(day.year, rng)}".split()
    elif roll < 0.23:
        words[at:at] = ["xã", *rng.choice(PLACES).split()]
    return " ".join(words)


def session_plan(hours: float) -> list[tuple[int, float]]:
    """(number, seconds) of each session, so that they add up to `hours`."""
    rng, budget, out = random.Random(SEED), hours * 3600, []
    while budget > 0:
        seconds = min(budget, rng.uniform(*SESSION_HOURS) * 3600)
        budget -= seconds
        out.append((len(out) + 1, seconds))
    return out


def make_session(number: int, seconds: float) -> tuple[Session, list[dict]]:
    rng = random.Random(SEED * 1000 + number)
    held_on = dt.date(2016, 1, 4) + dt.timedelta(days=number * 3 + rng.randint(0, 2))
    session = Session(id=f"TCD-{held_on.year}-{number:05d}", held_on=held_on.isoformat(),
                      title=f"Tiếp công dân {name(rng)} — {' '.join(syllable(rng) for _ in range(6))}",
                      case_code=f"KN-{held_on.year}-{number:05d}", category=rng.choice(CATEGORIES),
                      central_point="Ban Tiếp công dân tỉnh", delegate_points=[f"UBND xã {rng.choice(PLACES)}"],
                      complainants=[name(rng) for _ in range(rng.randint(1, 2))], revision=1)
    per = 3600 / SYLLABLES_PER_HOUR
    t, segments = 0.5, []
    while t < seconds:
        text = sentence(rng, held_on)
        words = []
        for w in text.split():
            words.append({"w": w, "start": round(t, 3), "end": round(t + per * 0.8, 3), "conf": 0.9})
            t += per
        segments.append({"start": words[0]["start"], "end": words[-1]["end"],
                         "speaker": rng.choice(["Chủ trì", "Công dân"]), "text": text, "words": words})
        t += rng.uniform(0.2, 1.5)
    return session, segments


class SyntheticCatalog:
    """The catalog methods the index reads, answering from the generator (no seals, no notes)."""

    def __init__(self, hours: float):
        self.plan = session_plan(hours)
        self.sessions = {}
        for number, seconds in self.plan:
            rng = random.Random(SEED * 1000 + number)
            held_on = dt.date(2016, 1, 4) + dt.timedelta(days=number * 3 + rng.randint(0, 2))
            self.sessions[f"TCD-{held_on.year}-{number:05d}"] = (number, seconds)

    def list_sessions(self):
        return [make_session(n, s)[0] for n, s in self.plan]

    def find_session(self, session_id):
        n, s = self.sessions[session_id]
        return make_session(n, s)[0]

    def recordings_for_session(self, session_id):
        return [Recording(id=f"r{self.sessions[session_id][0]:015d}", session_id=session_id, point="",
                          original_name="x.mp4", original_sha256="", access_sha256=None, access_mime="",
                          duration=0, has_video=0, has_audio=1, probe={}, created_at="")]

    def list_seals(self, **where):
        return []

    def list_notes(self, **where):
        return []

    def current_transcript(self, recording_id):
        number = int(recording_id[1:])
        segments = make_session(number, dict(self.plan)[number])[1]
        return Transcript(id=number, recording_id=recording_id, version=1, kind="machine", engine="",
                          model="", author="", label="", based_on=None, sha256=None, segments=segments,
                          seconds=0, created_at="")


@dataclass
class Settings:
    index_dir: Path


@dataclass
class BenchArchive:
    settings: Settings
    catalog: SyntheticCatalog


# -- queries ---------------------------------------------------------------------------------------

def query_sets(n: int, first_year: int, last_year: int) -> dict[str, list[dict]]:
    """The query kinds, `n` each: content words from the common part of the vocabulary (ranks
    20-200: long posting lists, the hard case), neighbours in the vocabulary as two-word queries
    and phrases, the same folded (no marks), and one word with a year and a category as filters."""
    rng = random.Random(7)
    pairs = [(VOCABULARY[i], VOCABULARY[i + 1]) for i in range(20, 200)]
    sets = {"one word": [], "two words": [], "phrase": [], "folded": [], "filtered": [], "number": []}
    for _ in range(n):
        a, b = rng.choice(pairs)
        sets["one word"].append({"q": VOCABULARY[rng.randrange(20, 200)]})
        sets["two words"].append({"q": f"{a} {b}"})
        sets["phrase"].append({"q": f'"{a} {b}"'} if rng.random() < 0.6 else {"q": f'"{name(rng)}"'})
        sets["folded"].append({"q": " ".join(fold(w) for w in rng.choice(pairs))})
        year = rng.randint(first_year, last_year)
        sets["filtered"].append({"q": VOCABULARY[rng.randrange(20, 200)], "date_from": f"{year}-01-01",
                                 "date_to": f"{year}-12-31", "category": rng.choice(CATEGORIES)})
        sets["number"].append({"q": str(rng.choice([rng.randint(1, 999), rng.randint(2010, 2025)]))})
    return sets


def fts_match(q: dict) -> str:
    """The FTS5 query a user would write for the same search."""
    text = q["q"]
    if text.startswith('"'):
        return text
    return " ".join(f'"{w}"' for w in text.split())


def percentiles(times: list[float]) -> dict[str, float]:
    qs = statistics.quantiles(times, n=100, method="inclusive")
    return {"p50": statistics.median(times), "p95": qs[94], "p99": qs[98]}


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


# -- the two engines ---------------------------------------------------------------------------------

def bench_index(catalog: SyntheticCatalog, window: float, queries: dict, root: Path, reuse: bool = False) -> dict:
    folder = root / f"index-{window}"
    build = build_cpu = float("nan")
    fresh = not (reuse and (folder / "CURRENT").exists())
    if fresh:
        shutil.rmtree(folder, ignore_errors=True)
    index = SearchIndex(BenchArchive(Settings(folder), catalog), window=window, ensure=False)
    if fresh:
        began, began_cpu = time.perf_counter(), time.process_time()
        index.rebuild()
        build, build_cpu = time.perf_counter() - began, time.process_time() - began_cpu
    index.search("và")  # open the reader once, as a server does
    out = {"build_s": build, "build_cpu_s": build_cpu, "size_mb": folder_size(folder) / 1e6,
           "docs": index.snapshot().reader.doc_count(), "kinds": {}}
    for kind, items in queries.items():
        times, cpu, totals = [], [], []
        for q in items:
            began, began_cpu = time.perf_counter(), time.process_time()
            result = index.search(q["q"], date_from=q.get("date_from"), date_to=q.get("date_to"),
                                  category=q.get("category"))
            times.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)
            totals.append(result.total)
        out["kinds"][kind] = {**percentiles(times), "cpu": percentiles(cpu), "hits": statistics.median(totals)}
    return out


def bench_fts(catalog: SyntheticCatalog, queries: dict, root: Path) -> dict:
    path = root / "fts.sqlite"
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE sessions (id TEXT PRIMARY KEY, held_on TEXT, category TEXT);
        CREATE VIRTUAL TABLE segments USING fts5(session UNINDEXED, start UNINDEXED, text,
                                                 tokenize = 'unicode61 remove_diacritics 2');
    """)
    began, began_cpu = time.perf_counter(), time.process_time()
    for number, seconds in catalog.plan:
        session, segments = make_session(number, seconds)
        db.execute("INSERT INTO sessions VALUES (?, ?, ?)", (session.id, session.held_on, session.category))
        db.executemany("INSERT INTO segments (session, start, text) VALUES (?, ?, ?)",
                       [(session.id, s["start"], s["text"]) for s in segments])
    db.commit()
    build, build_cpu = time.perf_counter() - began, time.process_time() - began_cpu
    out = {"build_s": build, "build_cpu_s": build_cpu, "size_mb": path.stat().st_size / 1e6, "kinds": {}}
    for kind, items in queries.items():
        times, cpu, totals = [], [], []
        for q in items:
            match = fts_match(q)
            where, args = "segments MATCH ?", [match]
            if q.get("date_from"):
                where += " AND s.held_on BETWEEN ? AND ? AND s.category = ?"
                args += [q["date_from"], q["date_to"], q["category"]]
            began, began_cpu = time.perf_counter(), time.process_time()
            total = db.execute(f"SELECT count(*) FROM segments JOIN sessions s ON s.id = segments.session"
                               f" WHERE {where}", args).fetchone()[0]
            db.execute(f"SELECT segments.session, start, snippet(segments, 2, '<mark>', '</mark>', '…', 12)"
                       f" FROM segments JOIN sessions s ON s.id = segments.session WHERE {where}"
                       f" ORDER BY rank LIMIT 20", args).fetchall()
            times.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)
            totals.append(total)
        out["kinds"][kind] = {**percentiles(times), "cpu": percentiles(cpu), "hits": statistics.median(totals)}
    db.close()
    return out


def report(label: str, data: dict) -> None:
    extra = f", {data['docs']} documents" if "docs" in data else ""
    print(f"\n{label}: build {data['build_s']:.1f} s (cpu {data['build_cpu_s']:.1f} s), size {data['size_mb']:.1f} MB{extra}")
    print(f"  {'query':<10} {'wall p50':>9} {'p95':>7} {'p99':>7}   {'cpu p50':>8} {'p95':>7} {'p99':>7}"
          f" {'median total':>13}   (ms)")
    for kind, k in data["kinds"].items():
        c = k["cpu"]
        print(f"  {kind:<10} {k['p50']:9.1f} {k['p95']:7.1f} {k['p99']:7.1f}   {c['p50']:8.1f} {c['p95']:7.1f}"
              f" {c['p99']:7.1f} {k['hits']:13.0f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=200)
    parser.add_argument("--windows", default="120", help="passage lengths in seconds, comma-separated")
    parser.add_argument("--queries", type=int, default=60, help="queries per kind")
    parser.add_argument("--fts", action="store_true", help="also measure SQLite FTS5")
    parser.add_argument("--keep", help="build in this folder and keep it (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true", help="with --keep: query the indexes built there before")
    args = parser.parse_args(argv)
    root = Path(args.keep or tempfile.mkdtemp(prefix="tcd-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    catalog = SyntheticCatalog(args.hours)
    years = [int(s[4:8]) for s in catalog.sessions]
    queries = query_sets(args.queries, min(years), max(years))
    print(f"corpus: {args.hours:g} h, {len(catalog.plan)} sessions, ~{args.hours * SYLLABLES_PER_HOUR:,.0f} syllables,"
          f" seed {SEED}; {args.queries} queries per kind; cpu count {os.cpu_count()}")
    results = {}
    for window in [float(w) for w in args.windows.split(",")]:
        label = {0.0: "index, one document per recording", 0.001: "index, one document per segment"}.get(
            window, f"index, {window:g} s passages")
        results[label] = bench_index(catalog, window, queries, root, reuse=args.reuse)
        report(label, results[label])
    if args.fts:
        fts = bench_fts(catalog, queries, root)
        report("SQLite FTS5 (unicode61 remove_diacritics 2), one row per segment", fts)
        for label, data in results.items():
            print(f"\n{label} / FTS5 ratios: latency (wall p50, p95; cpu p50, p95), median total")
            for kind, k in data["kinds"].items():
                f = fts["kinds"][kind]
                print(f"  {kind:<10} {k['p50'] / max(f['p50'], 1e-3):7.2f} {k['p95'] / max(f['p95'], 1e-3):7.2f}"
                      f" {k['cpu']['p50'] / max(f['cpu']['p50'], 1e-3):7.2f} {k['cpu']['p95'] / max(f['cpu']['p95'], 1e-3):7.2f}"
                      f"   {k['hits'] / max(f['hits'], 1):7.2f}")
            print(f"  build time {data['build_s'] / max(fts['build_s'], 1e-3):.1f}x, size {data['size_mb'] / max(fts['size_mb'], 1e-3):.1f}x")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
