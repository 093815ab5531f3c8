"""Disc sets: ISO images read back with pycdlib (no mounting), a file spanning two "CDs" of a
few MB restored bit-exact, and a missing or damaged disc naming every file it affects."""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
from pathlib import Path

import pycdlib
import pytest
from click.testing import CliRunner

from archive import open_archive
from archive.backup import Item
from archive.cli import main
from archive.disc import MAX_FILE, backup_disc, plan_discs
from archive.fixity import verify
from archive.restore import restore, verify_backup

DISC = 3_500_000          # a "CD" of 3.5 MB keeps the test small
LONG_NAME = "Bản ghi âm điểm cầu huyện Đông Hải – phiên chiều.wav"


@pytest.fixture(scope="module")
def big_wav(tmp_path_factory, media_tools) -> Path:
    """About 2.6 MB of audio: larger than one test disc."""
    path = tmp_path_factory.mktemp("wav") / LONG_NAME
    media_tools.ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=14:sample_rate=48000", "-ac", "2", str(path))
    return path


@pytest.fixture
def two_sessions(filled, big_wav, media_tools):
    arch = filled["archive"]
    s2 = arch.catalog.create_session({"title": "Phiên chiều — kiến nghị về bồi thường", "held_on": "2025-04-02"})
    rec = media_tools.add_recording(arch, s2.id, big_wav, None, "UBND huyện Đông Hải", has_video=False)
    arch.catalog.add_transcript(recording_id=rec, segments=[{"start": 0.5, "end": 2.0, "speaker": "",
                                                             "text": "Kiến nghị bồi thường", "words": []}],
                                kind="machine", author="vosk", engine="vosk")
    return {**filled, "session2": s2.id, "wav": rec}


def read(iso: pycdlib.PyCdlib, **path) -> bytes:
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, **path)
    return out.getvalue()


def iso_names(iso: pycdlib.PyCdlib) -> list[str]:
    names = []
    for root, dirs, files in iso.walk(iso_path="/"):
        names += [f"{root}/{n}" for n in dirs + files]
    return names


def test_file_spanning_two_discs_restores_bit_exact(two_sessions, tmp_path):
    arch = two_sessions["archive"]
    report = backup_disc(arch, tmp_path / "discs", DISC, label="Bộ đĩa tháng 3")
    assert report.complete and len(report.images) == 2
    images = [Path(p) for p in report.images]
    assert [re.search(r"-(\d)of2\.iso$", p.name).group(1) for p in images] == ["1", "2"]

    manifests, isos = [], []
    for number, image in enumerate(images, start=1):
        assert image.stat().st_size <= DISC
        iso = pycdlib.PyCdlib()
        iso.open(str(image))
        isos.append(iso)
        manifests.append(read(iso, udf_path="/tcd-set.json"))
        note = json.loads(read(iso, udf_path="/tcd-disc.json"))
        assert (note["disc"], note["discs"], note["label"]) == (number, 2, "Bộ đĩa tháng 3")
        assert iso.pvd.volume_identifier.decode().strip().endswith(f"_{number}OF2")
        assert f"Đây là đĩa số {number} trong bộ 2 đĩa" in read(iso, udf_path="/README.html").decode()
        assert read(iso, udf_path="/viewer/data.js").startswith(b"window.TCD_DATA = ")
        assert all(re.fullmatch(r"[A-Z0-9_/.;]+", n) for n in iso_names(iso)), "ISO 9660 names are ASCII"
    assert manifests[0] == manifests[1], "every disc carries the same manifest of the whole set"
    manifest = json.loads(manifests[0])

    wav_path = f"data/{two_sessions['session2']}/recordings/{two_sessions['wav']}/original/{LONG_NAME}"
    entry = next(e for e in manifest["files"] if e["path"] == wav_path)
    assert [p["disc"] for p in entry["parts"]] == [1, 2]
    joined = b""
    for part in entry["parts"]:
        iso = isos[part["disc"] - 1]
        body = read(iso, udf_path="/" + part["path"])   # the real Vietnamese name, in UDF
        assert hashlib.sha256(body).hexdigest() == part["sha256"] and len(body) == part["size"] < MAX_FILE
        joined += body
    original_sha = arch.catalog.get_recording(two_sessions["wav"]).original_sha256
    assert hashlib.sha256(joined).hexdigest() == entry["sha256"] == original_sha
    # Joliet: the same name, for Windows readers without UDF
    video = arch.catalog.get_recording(two_sessions["video"])
    joliet = f"/data/{two_sessions['session']}/recordings/{video.id}/original/{video.original_name}"
    assert read(isos[0], joliet_path=joliet) == arch.store.path(video.original_sha256).read_bytes()
    for iso in isos:
        iso.close()

    assert verify_backup(tmp_path / "discs").ok
    # the same discs as a system that mounted them shows them: folders with the UDF names
    for number, image in enumerate(images, start=1):
        iso = pycdlib.PyCdlib()
        iso.open(str(image))
        for root, _, names in iso.walk(udf_path="/"):
            for name in names:
                target = tmp_path / "mounted" / f"disc{number}" / f"{root}/{name}".lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(read(iso, udf_path=f"{root}/{name}"))
        iso.close()
    mounted = verify_backup(tmp_path / "mounted")
    assert mounted.ok and mounted.kind == "disc set" and mounted.checked == len(manifest["files"]) + 1
    fresh = open_archive(tmp_path / "new-home", env={})
    result = restore(fresh, tmp_path / "discs")
    assert not result.problems and sorted(result.sessions_added) == [two_sessions["session"], two_sessions["session2"]]
    assert fresh.store.path(original_sha).read_bytes() == arch.store.path(original_sha).read_bytes()
    assert verify(fresh).ok
    assert fresh.catalog.current_transcript(two_sessions["wav"]).segments[0]["text"] == "Kiến nghị bồi thường"
    assert not restore(fresh, tmp_path / "discs").changed  # twice: nothing changes


def test_missing_and_damaged_discs_name_every_file_and_restore_the_rest(two_sessions, tmp_path, home):
    arch = two_sessions["archive"]
    report = backup_disc(arch, tmp_path / "discs", DISC, label="Hỏng")
    first, second = (Path(p) for p in report.images)
    second.unlink()                                    # a lost disc
    video = arch.catalog.get_recording(two_sessions["video"])
    access = arch.store.path(video.access_sha256).read_bytes()
    image = bytearray(first.read_bytes())
    at = image.find(access[4096:4160])
    assert at > 0
    image[at] ^= 0xFF                                   # a scratch on the access copy of disc 1
    first.write_bytes(bytes(image))

    runner = CliRunner()
    check = runner.invoke(main, ["--home", str(home), "backup", "verify", str(tmp_path / "discs")])
    assert check.exit_code == 1
    wav_name = f"recordings/{two_sessions['wav']}/original/{LONG_NAME}"
    assert "disc 2 of 2 is missing or damaged" in check.output and wav_name in check.output
    assert f"recordings/{video.id}/access/{video.id}.mp4" in check.output
    assert "differs from its SHA-256" in check.output

    fresh_home = tmp_path / "new-home"
    result = runner.invoke(main, ["--home", str(fresh_home), "restore", str(tmp_path / "discs")])
    assert result.exit_code == 1
    assert f"{wav_name} (disc 1, 2 of 2)" not in result.output  # named by the missing disc instead:
    assert "on disc 2 of 2, which is missing or damaged" in result.output and LONG_NAME in result.output
    assert f"{video.id}/access/{video.id}.mp4" in result.output
    fresh = open_archive(fresh_home, env={})
    # everything else is back: both sessions' rows, the original of the video, its transcripts
    assert {s.id for s in fresh.catalog.list_sessions()} == {two_sessions["session"], two_sessions["session2"]}
    assert fresh.store.rehash(video.original_sha256) == video.original_sha256
    assert len(fresh.catalog.transcripts_for_recording(video.id)) == 2
    damaged = {p.sha256 for p in verify(fresh).problems}
    assert damaged == {video.access_sha256, arch.catalog.get_recording(two_sessions["wav"]).original_sha256}


def test_full_destination_then_rerun_writes_only_the_missing_images(two_sessions, tmp_path, home, monkeypatch):
    real_write = pycdlib.PyCdlib.write
    calls = {"n": 0}

    def fills_up_on_the_second_image(self, filename, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            with open(filename, "wb") as f:
                f.write(b"\0" * 4096)  # it began writing, then the disk was full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, filename, *args, **kwargs)

    runner = CliRunner()
    args = ["--home", str(home), "backup", "disc", str(tmp_path / "discs"), "--media", "cd",
            "--media-size", str(DISC), "--label", "Lần hai"]
    monkeypatch.setattr(pycdlib.PyCdlib, "write", fills_up_on_the_second_image)
    result = runner.invoke(main, args)
    assert result.exit_code == 1 and "is full" in result.output
    assert [p.name.endswith("-1of2.iso") for p in (tmp_path / "discs").iterdir()] == [True]
    kept = next((tmp_path / "discs").glob("*.iso"))
    stamp = kept.stat().st_mtime_ns
    assert two_sessions["archive"].catalog.list_backups()[0]["status"] == "failed"

    monkeypatch.setattr(pycdlib.PyCdlib, "write", real_write)
    again = runner.invoke(main, [*args, "--json"])
    assert again.exit_code == 0, again.output
    data = json.loads(again.output)
    assert data["complete"] and data["unchanged"] > 0 and data["written"] > 0
    assert kept.stat().st_mtime_ns == stamp
    assert len(list((tmp_path / "discs").glob("*.iso"))) == 2
    assert verify_backup(tmp_path / "discs").ok


def _items(session: str, sizes: list[int]) -> list[Item]:
    return [Item(f"{session}/f{i}", size, "0" * 64, session, object="0" * 64) for i, size in enumerate(sizes)]


def test_plan_packs_whole_sessions_and_cuts_only_files_larger_than_a_disc():
    gb = 10 ** 9
    docs = [({}, _items("A", [1 * gb, 2 * gb])), ({}, _items("B", [10 * gb])), ({}, _items("C", [3 * gb])),
            ({}, _items("D", [5 * gb]))]
    discs = plan_discs(docs, 25 * gb)
    where = {}
    for disc in discs:
        assert sum(p.cost for p in disc.pieces) <= disc.capacity
        for p in disc.pieces:
            assert p.size <= MAX_FILE, "no file on a disc reaches 4 GiB"
            where.setdefault(p.item.path, []).append((disc.number, p.part))
    assert where["A/f0"] == [(1, 0)] and where["A/f1"] == [(1, 0)]
    assert [n for n, _ in where["B/f0"]] == [1, 1, 1]        # 10 GB on one BD, in parts under 4 GiB
    assert [part for _, part in where["B/f0"]] == [1, 2, 3]
    assert where["C/f0"] == [(1, 0)]

    capacity = 4 * 2048 + 3 * 6144
    small = plan_discs([({}, _items("A", [600, 700])), ({}, _items("B", [30000])), ({}, _items("C", [300]))],
                       capacity)
    assert [p.item.session_id for p in small[0].pieces] == ["A", "A", "C"]  # C fills the gap A left
    big = [p for d in small for p in d.pieces if p.item.session_id == "B"]
    assert [p.disc for p in big] == [2, 3] and [p.part for p in big] == [1, 2]
    assert [p.offset for p in big] == [0, big[0].size] and sum(p.size for p in big) == 30000
    assert all(sum(p.cost for p in d.pieces) <= capacity for d in small)


def test_an_image_that_does_not_open_counts_as_a_missing_disc(two_sessions, tmp_path):
    report = backup_disc(two_sessions["archive"], tmp_path / "discs", DISC, label="Vỡ")
    first = Path(report.images[0])
    first.write_bytes(first.read_bytes()[:20000])      # a truncated copy
    check = verify_backup(tmp_path / "discs")
    assert any(p.startswith(first.name) and "cannot be opened" in p for p in check.problems)
    lost = next(p for p in check.problems if p.startswith("disc 1 of 2 is missing or damaged"))
    assert f"data/{two_sessions['session']}/session.json" in lost and LONG_NAME in lost
    fresh = open_archive(tmp_path / "new-home", env={})
    result = restore(fresh, tmp_path / "discs")    # the set's manifest on disc 2 still describes all
    assert {s.id for s in fresh.catalog.list_sessions()} == {two_sessions["session"], two_sessions["session2"]}
    assert any("cannot be opened" in p for p in result.problems)
    # the second session's documents went on its first disc, the broken one: each is named
    assert any(f"transcript v1 of recording {two_sessions['wav']}" in p for p in result.problems)
    assert fresh.catalog.get_recording(two_sessions["wav"]).original_name == LONG_NAME


def test_an_unwritable_destination_is_one_sentence_before_any_work(two_sessions, tmp_path):
    from archive.errors import StorageError
    arch = two_sessions["archive"]
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="Cannot write to the backup destination"):
        backup_disc(arch, blocker / "discs", DISC)
    assert arch.catalog.list_backups() == []  # refused before a backup was started
