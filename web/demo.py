"""`make demo`: ingest a generated sample session and serve the web UI.

    python -m web.demo --home DIR [--port 8000] [--no-serve]

The sample's script is imported as a human transcript, labelled as such, so search and playback
work on a machine with no Vietnamese model; where a model is installed, Vosk's version is made
during ingest and appears beside it. Running the demo again reuses what is there and prints a
new one-time password for the `admin` user.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from archive import open_archive
from archive import users
from archive.errors import NotFound
from archive.transcripts import save_transcript
from ingest import pipeline
from ingest.sample import SESSION_META, make_sample
from search import open_index

HUMAN_LABEL = "Kịch bản mẫu (bản ghi của người, không phải máy nhận dạng)"


def ingest_sample(archive) -> str:
    """The sample session's id, ingesting it first when the archive does not have it yet."""
    for session in archive.catalog.list_sessions():
        if session.case_code == SESSION_META["case_code"]:
            return session.id
    sample = make_sample(archive.home / "sample-input")
    session_id = None
    for path, point in sample["recordings"]:
        [outcome] = pipeline.ingest_paths(archive, [path], session_id=session_id,
                                          session_meta=None if session_id else SESSION_META,
                                          point=point, actor="demo")
        if not outcome.ok:
            sys.exit(f"demo: could not ingest {path.name}: {outcome.message}")
        session_id = outcome.session_id
    for rec in archive.catalog.recordings_for_session(session_id):
        save_transcript(archive, rec.id, sample["segments"], kind="human", author="demo",
                        label=HUMAN_LABEL)
    open_index(archive).sync()
    return session_id


def one_time_admin(archive) -> str:
    password = users.generate_password()
    try:
        archive.catalog.get_user("admin")
        archive.catalog.update_user("admin", password_hash=users.hash_password(password), disabled=0)
        archive.audit("demo", "user.password", target="admin")
    except NotFound:
        users.add_user(archive, "admin", "admin", password, clearance=True, actor="demo")
    return password


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default="demo-data")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-serve", action="store_true")
    args = parser.parse_args()
    archive = open_archive(args.home)
    session_id = ingest_sample(archive)
    password = one_time_admin(archive)
    print(f"\nSample session {session_id} is in {archive.home}.")
    print(f"Open http://{args.host}:{args.port}/ and sign in as admin / {password}")
    print("(a new password is printed each time the demo starts)\n", flush=True)
    if not args.no_serve:
        tcd = str(Path(sys.executable).parent / "tcd")
        os.execv(tcd, [tcd, "--home", str(archive.home), "serve", "--host", args.host, "--port", str(args.port)])


if __name__ == "__main__":
    main()
