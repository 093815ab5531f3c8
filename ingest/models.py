"""Vosk models: installing them (from a zip, a folder or the official site), listing them,
choosing the one in use, and finding it for the transcribe stage.

Models live in `models/<name>/` of the data folder. An install never leaves half a model
behind: the files go into a temporary folder beside `models/`, the layout is checked, the model
is loaded once in a separate process (a corrupt file fails there, not in a transcription), and
only then is the folder renamed into place. On any failure nothing already installed changes.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from archive.config import Settings, set_setting
from archive.errors import ArchiveError, InvalidInput, NotFound, StorageUnavailable

MODEL_SITE = "https://alphacephei.com/vosk/models/"
# The official Vietnamese models. Their published sizes and SHA-256 could not be confirmed
# offline, so a download is checked against the server's Content-Length and its SHA-256 is
# printed for the record (and compared when --sha256 is given).
DOWNLOADS = {"vi-small": "vosk-model-small-vn-0.4", "vi": "vosk-model-vn-0.4"}
CONNECT_TIMEOUT = 5.0
LOAD_TIMEOUT = 300.0
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
USB_HINT = ("on a machine with Internet access download {url}, bring the zip on a USB stick "
            "and run `tcd model install /path/to/{name}.zip`")


class ModelMissing(ArchiveError):
    """No speech model is installed (or the chosen one is not); transcripts wait for one."""


class ModelBroken(ArchiveError):
    """A model folder or zip that is not a usable Vosk model."""


@dataclass(frozen=True)
class InstalledModel:
    name: str
    path: Path
    size: int
    in_use: bool

    def to_dict(self) -> dict:
        return {"name": self.name, "path": str(self.path), "size": self.size, "in_use": self.in_use}


# -- layout ------------------------------------------------------------------------------------

def missing_parts(folder: Path) -> list[str]:
    """What a Vosk model folder lacks: am/final.mdl, conf/mfcc.conf and a decoding graph."""
    missing = [part for part in ("am/final.mdl", "conf/mfcc.conf") if not (folder / part).is_file()]
    graph = folder / "graph"
    if not ((graph / "HCLG.fst").is_file()
            or ((graph / "HCLr.fst").is_file() and (graph / "Gr.fst").is_file())):
        missing.append("graph/HCLG.fst (or graph/HCLr.fst with graph/Gr.fst)")
    return missing


def check_layout(folder: Path, what: str) -> None:
    missing = missing_parts(folder)
    if missing:
        raise ModelBroken(f"{what} is not a Vosk model: it lacks {', '.join(missing)}; "
                          "install the unpacked model folder or its original zip.")


def check_loads(folder: Path) -> None:
    """Load the model in a child process: a corrupt file can abort Kaldi, which must not take
    this process down, and the memory of the test load is given back at once."""
    code = ("import sys, vosk; vosk.SetLogLevel(-1)\n"
            "try:\n    vosk.Model(sys.argv[1])\n"
            "except Exception as exc:\n    sys.exit(f'{exc}')\n")
    try:
        proc = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True,
                              text=True, errors="replace", timeout=LOAD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ModelBroken(f"Loading the model took over {LOAD_TIMEOUT:.0f} s; it is probably "
                          "damaged, so get a fresh copy and install it again.") from None
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        # Kaldi says what is wrong on its ERROR line; Python's last line only says it failed.
        kaldi = [l.split(") ", 1)[-1] for l in lines if l.startswith("ERROR")]
        reason = (kaldi or lines or [f"exit status {proc.returncode}"])[-1]
        raise ModelBroken(f"Vosk cannot load this model ({reason[:200]}); a file in it is damaged, "
                          "so get a fresh copy and install it again.")


# -- where models are --------------------------------------------------------------------------

def installed(settings: Settings) -> list[InstalledModel]:
    folder = settings.models_dir
    if not folder.is_dir():
        return []
    names = sorted(p.name for p in folder.iterdir()
                   if p.is_dir() and not p.name.startswith(".") and not missing_parts(p))
    current = _current_name(settings, names)
    return [InstalledModel(n, folder / n, _folder_size(folder / n), n == current) for n in names]


def _current_name(settings: Settings, names: list[str]) -> str | None:
    if settings.model:
        return settings.model
    return names[0] if len(names) == 1 else None


def resolve(settings: Settings) -> InstalledModel:
    """The model to use: the one settings name, else the only one installed."""
    models = installed(settings)
    if settings.model:
        for m in models:
            if m.name == settings.model:
                return m
        raise ModelMissing(f"The model '{settings.model}' chosen in tcd.toml is not installed; "
                           "install it with `tcd model install ZIP_OR_DIR` or pick another with "
                           "`tcd model use NAME`.")
    if not models:
        raise ModelMissing("No speech model is installed; install one with "
                           "`tcd model install vosk-model-small-vn-0.4.zip` (or `tcd model download "
                           "vi-small` where the machine is online), then run `tcd transcribe --pending`.")
    if len(models) > 1:
        raise ModelMissing(f"{len(models)} models are installed ({', '.join(m.name for m in models)}); "
                           "choose one with `tcd model use NAME`.")
    return models[0]


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# -- installing --------------------------------------------------------------------------------

def install(settings: Settings, source: Path, name: str | None = None, check: bool = True,
            progress: Callable[[int], None] | None = None) -> InstalledModel:
    """Install a model from a zip or an unpacked folder into `models/<name>`."""
    source = Path(source).expanduser()
    if not source.exists():
        raise NotFound(f"There is no file or folder {source}.")
    models_dir = settings.models_dir
    models_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=models_dir, prefix=".install-"))
    try:
        if source.is_dir():
            root = work / "model"
            shutil.copytree(source, root, symlinks=False)
            default_name = source.resolve().name
        elif zipfile.is_zipfile(source):
            root, default_name = _extract_zip(source, work / "unpacked")
        else:
            raise ModelBroken(f"{source.name} is neither a zip file nor a folder; give the model's "
                              "zip (as downloaded from the Vosk site) or its unpacked folder.")
        name = name or default_name
        if not NAME_RE.match(name):
            raise InvalidInput(f"'{name}' cannot be a model name; use letters, digits, '.', '-' "
                               "and '_' (give one with --name).")
        target = models_dir / name
        if target.exists():
            raise InvalidInput(f"A model named '{name}' is installed already; remove "
                               f"{target} first or give another name with --name.")
        check_layout(root, source.name)
        if check:
            check_loads(root)
        os.rename(root, target)
    except OSError as exc:
        raise ArchiveError(f"Could not install the model into {models_dir} ({exc.strerror or exc}); "
                           "check the free space and permissions, then try again.") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return next(m for m in installed(settings) if m.name == name)


def _extract_zip(source: Path, dest: Path) -> tuple[Path, str]:
    """Unpack safely: refuse absolute paths, `..` and links; return the model root and name."""
    try:
        with zipfile.ZipFile(source) as zf:
            members = zf.infolist()
            for info in members:
                path = PurePosixPath(info.filename)
                if path.is_absolute() or ".." in path.parts or "\\" in info.filename:
                    raise ModelBroken(f"{source.name} holds the unsafe path '{info.filename}'; "
                                      "it was not installed.")
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise ModelBroken(f"{source.name} holds a link ('{info.filename}'); "
                                      "a model zip holds only files, so it was not installed.")
            bad = zf.testzip()
            if bad:
                raise ModelBroken(f"{source.name} is damaged (the entry '{bad}' fails its CRC "
                                  "check); copy the zip again and retry.")
            dest.mkdir(parents=True)
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise ModelBroken(f"{source.name} is a damaged zip ({exc}); copy it again and retry.") from None
    entries = [p for p in dest.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    if len(entries) == 1 and entries[0].is_dir() and missing_parts(dest):
        return entries[0], entries[0].name
    return dest, source.stem


def download(settings: Settings, which: str, sha256: str | None = None,
             progress: Callable[[int], None] | None = None,
             on_total: Callable[[int], None] | None = None) -> tuple[InstalledModel, str]:
    """Fetch an official Vietnamese model and install it; returns it with the zip's SHA-256."""
    if which not in DOWNLOADS:
        raise InvalidInput(f"Unknown model '{which}'; choose one of {', '.join(DOWNLOADS)}.")
    name = DOWNLOADS[which]
    url = f"{MODEL_SITE}{name}.zip"
    hint = USB_HINT.format(url=url, name=name)
    if (settings.models_dir / name).exists():
        raise InvalidInput(f"The model '{name}' is installed already (`tcd model list`).")
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.models_dir, prefix=".download-") as tmp:
        zip_path = Path(tmp) / f"{name}.zip"
        try:
            response = urllib.request.urlopen(url, timeout=CONNECT_TIMEOUT)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise StorageUnavailable(f"The Vosk model site cannot be reached ({reason}); "
                                     f"{hint}.") from None
        expected = int(response.headers.get("Content-Length") or 0)
        if on_total:
            on_total(expected)
        digest, size = hashlib.sha256(), 0
        try:
            with response, open(zip_path, "wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if progress:
                        progress(len(chunk))
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise StorageUnavailable(f"The download of {name} broke off ({exc}); run the command "
                                     f"again, or {hint}.") from None
        if expected and size != expected:
            raise ModelBroken(f"The download of {name} is {size} bytes, not the {expected} the "
                              f"server announced; run the command again, or {hint}.")
        actual = digest.hexdigest()
        if sha256 and actual != sha256.lower():
            raise ModelBroken(f"The download of {name} has SHA-256 {actual}, not {sha256}; "
                              f"nothing was installed; run the command again, or {hint}.")
        return install(settings, zip_path, name=name), actual


# -- choosing ----------------------------------------------------------------------------------

def use(settings: Settings, name: str) -> InstalledModel:
    """Make `name` the model in use by writing it into the [transcribe] table of tcd.toml."""
    names = [m.name for m in installed(settings)]
    if name not in names:
        raise NotFound(f"There is no installed model '{name}'; `tcd model list` shows "
                       f"{'them: ' + ', '.join(names) if names else 'none yet'}.")
    set_setting(settings.home, "transcribe", "model", name)
    return next(m for m in installed(_with_model(settings, name)) if m.name == name)


def _with_model(settings: Settings, name: str) -> Settings:
    from dataclasses import replace
    return replace(settings, model=name)


