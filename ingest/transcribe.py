"""The transcribe stage: offline speech recognition with Vosk, in parallel, resumable.

The 16 kHz mono WAV is cut into chunks at silences (ffmpeg's `silencedetect`; no chunk over
`CHUNK_MAX` seconds), the chunks are decoded in a pool of worker processes that each load the
model once, and the words (with times offset by their chunk's start) are merged and grouped
into segments at pauses, so a segment reads as an utterance.

Decoding is reproducible: Kaldi dithers each MFCC frame with noise seeded from the C library's
`rand()`, so a worker reseeds it before every chunk; a chunk then decodes to the same words
whichever worker takes it and whatever that worker decoded before.

Each decoded chunk is written next to the audio (`asr-chunks-<model>-<audio hash>/`) as soon as
it is done, so a transcription that is killed goes on where it stopped when run again. The
folder is removed once the transcript is stored.

`transcribe_recording()` is what the ingest pipeline and `tcd transcribe` call.
"""
from __future__ import annotations

import concurrent.futures as cf
import ctypes
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import time
import wave
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol

from archive.errors import ArchiveError, NotFound
from archive.store import hash_file
from archive.transcripts import save_transcript

from . import models
from .models import ModelBroken, ModelMissing  # noqa: F401  (part of this module's surface)

CHUNK_MAX = 60.0        # seconds; the longest chunk a worker decodes
SILENCE_DB = -35        # below this level (dBFS) audio counts as silence
SILENCE_MIN = 0.3       # seconds of quiet that make a place to cut
SEGMENT_PAUSE = 0.8     # a pause this long between words starts a new segment
SEGMENT_MAX = 20.0      # seconds; a longer run of speech is cut at its next word
BLOCK_FRAMES = 2000     # samples fed at a time: 4000 bytes, as vosk-transcriber feeds them
DITHER_SEED = 1         # the C library's own starting seed

Progress = Callable[[float], None]


@dataclass(frozen=True)
class Chunk:
    start: int   # first sample
    end: int     # one past the last sample
    silent: bool = False

    @property
    def name(self) -> str:
        return f"{self.start:011d}-{self.end:011d}.json"


# -- planning ----------------------------------------------------------------------------------

def find_silences(audio: Path, noise_db: int = SILENCE_DB,
                  min_len: float = SILENCE_MIN) -> list[tuple[float, float]]:
    """Quiet stretches (start, end) in seconds, as ffmpeg's silencedetect filter finds them."""
    proc = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-v", "info", "-i", str(audio), "-af",
         f"silencedetect=noise={noise_db}dB:d={min_len}", "-f", "null", "-"],
        capture_output=True, text=True)
    if proc.returncode != 0:
        raise ArchiveError(f"ffmpeg could not read {audio.name} to find its pauses "
                           f"({(proc.stderr.strip().splitlines() or ['no reason'])[-1]}).")
    silences, start = [], None
    for match in re.finditer(r"silence_(start|end): (-?[\d.]+)", proc.stderr):
        if match.group(1) == "start":
            start = max(0.0, float(match.group(2)))
        elif start is not None:
            silences.append((start, float(match.group(2))))
            start = None
    if start is not None:  # quiet until the end of the file
        silences.append((start, float("inf")))
    return silences


def plan_chunks(duration: float, silences: list[tuple[float, float]], rate: int,
                max_len: float = CHUNK_MAX) -> list[Chunk]:
    """Cut in the middle of pauses, preferring the longest pause in the second half of each
    window (chunks stay long and alike, so few words sit near a cut); a stretch with no pause is
    cut hard at `max_len`. Chunks that lie inside one silence are marked silent (not decoded)."""
    total = int(round(duration * rate))
    cuts, pos = [0.0], 0.0
    while duration - pos > max_len:
        end = pos + max_len

        def pauses(lo: float) -> list[tuple[float, float]]:
            """(length, middle) of each pause clipped to the window, middle after `lo`."""
            found = []
            for s0, s1 in silences:
                a, b = max(s0, pos), min(s1, end)
                if b > a and lo < (a + b) / 2 <= end:
                    found.append((b - a, (a + b) / 2))
            return found

        window = pauses(pos + max_len / 2) or pauses(pos + 1.0)
        pos = max(window)[1] if window else end
        cuts.append(pos)
    bounds = [int(round(c * rate)) for c in cuts] + [total]
    chunks = []
    for a, b in zip(bounds, bounds[1:]):
        if b > a:
            silent = any(s0 * rate <= a and b <= s1 * rate for s0, s1 in silences)
            chunks.append(Chunk(a, b, silent))
    return chunks


# -- decoding ----------------------------------------------------------------------------------

class Recognizer(Protocol):
    """What Vosk's KaldiRecognizer offers and `recognize` uses (a fake one in unit tests)."""

    def AcceptWaveform(self, data: bytes) -> bool: ...
    def Result(self) -> str: ...
    def FinalResult(self) -> str: ...


def recognize(recognizer: Recognizer, blocks: Iterable[bytes], offset: float = 0.0) -> list[dict]:
    """Feed audio blocks to a recognizer; its words with times shifted by `offset` seconds."""
    results = []
    for block in blocks:
        if recognizer.AcceptWaveform(block):
            results.append(recognizer.Result())
    results.append(recognizer.FinalResult())
    words = []
    for raw in results:
        for w in json.loads(raw).get("result", []):
            words.append({"w": w["word"], "start": round(w["start"] + offset, 3),
                          "end": round(w["end"] + offset, 3), "conf": round(w.get("conf", 1.0), 3)})
    return words


def _blocks(wav: wave.Wave_read, frames: int) -> Iterable[bytes]:
    while frames > 0:
        data = wav.readframes(min(BLOCK_FRAMES, frames))
        if not data:
            return
        frames -= BLOCK_FRAMES
        yield data


def word_agreement(a: list[str], b: list[str]) -> float:
    """Share of words two transcripts have in common in the same order (their longest common
    subsequence), over the longer one: 1.0 when they are the same word for word. difflib's
    matching blocks are not used: they anchor on the longest run first, and on speech that
    repeats phrases that misaligns the rest (24% instead of 47% on the benchmark recording)."""
    previous = [0] * (len(b) + 1)
    for word in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if word == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1] / max(len(a), len(b), 1)


def _reseed_dither() -> None:
    """Kaldi's MFCC dither seeds its noise from the C library's `rand()`, so without this the
    words of a chunk depend on what the worker decoded before (on the Korean test model and
    synthetic speech, 17% of the words changed between two decodes of the same audio). The
    dither itself stays on: with `--dither=0` exact digital silence gives out-of-range features,
    and the model then heard words in the pauses and found no end of utterance for 15 s."""
    if _srand is not None:
        _srand(DITHER_SEED)


def _find_srand():
    try:
        return ctypes.CDLL(None).srand
    except (OSError, AttributeError, TypeError):  # no C library here: correct, not repeatable
        return None


_srand = _find_srand()  # looked up once per process, not per chunk


# Worker state: each worker process loads the model once, in the pool's initializer, and keeps
# one recognizer per sample rate with the samples fed to it so far.
_worker_model = None
_worker_error = ""
_worker_recognizers: dict[int, list] = {}


def _worker_recognizer(rate: int) -> list:
    """[recognizer, samples fed] for `rate`. One recognizer serves every chunk: creating one
    composes the decoding graph anew, which cost a third of the CPU time with 30 s chunks.
    After FinalResult() it starts the next chunk afresh (the same words as a new one), only
    its times count on from the samples fed before, which the caller subtracts."""
    if rate not in _worker_recognizers:
        import vosk
        recognizer = vosk.KaldiRecognizer(_worker_model, rate)
        recognizer.SetWords(True)
        _worker_recognizers[rate] = [recognizer, 0]
    return _worker_recognizers[rate]


def _init_worker(model_path: str) -> None:
    global _worker_model, _worker_error
    import vosk
    vosk.SetLogLevel(-1)
    try:
        _worker_model = vosk.Model(model_path)
    except Exception as exc:  # reported by every task of this worker, as one clear error
        _worker_error = str(exc) or type(exc).__name__


def _decode_chunk(audio: str, chunk: Chunk, out: str) -> list[dict]:
    """Decode one chunk in a worker; writes its words to `out` (atomically) and returns them."""
    if _worker_model is None:
        raise ModelBroken(f"Vosk could not load the speech model ({_worker_error}); reinstall it "
                          "with `tcd model install` and run `tcd transcribe` again.")
    with wave.open(audio, "rb") as wav:
        rate = wav.getframerate()
        _reseed_dither()
        state = _worker_recognizer(rate)
        wav.setpos(chunk.start)
        frames = min(chunk.end, wav.getnframes()) - chunk.start
        words = recognize(state[0], _blocks(wav, frames), (chunk.start - state[1]) / rate)
        state[1] += frames
    tmp = f"{out}.part"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(words, f, ensure_ascii=False)
    os.replace(tmp, out)
    return words


# -- merging and segmenting --------------------------------------------------------------------

def merge_words(chunks: list[list[dict]], duration: float) -> list[dict]:
    """The words of all chunks in time order, each inside the audio and none before the last."""
    merged: list[dict] = []
    for w in sorted((w for c in chunks for w in c), key=lambda w: (w["start"], w["end"])):
        start = min(max(w["start"], merged[-1]["end"] if merged else 0.0), duration)
        end = min(max(w["end"], start), duration)
        merged.append({**w, "start": round(start, 3), "end": round(end, 3)})
    return merged


def segment_words(words: list[dict], pause: float = SEGMENT_PAUSE,
                  max_len: float = SEGMENT_MAX) -> list[dict]:
    """Group words into segments, starting a new one after a pause or when one grows too long."""
    segments: list[dict] = []
    current: list[dict] = []
    for w in words:
        if current and (w["start"] - current[-1]["end"] >= pause
                        or w["end"] - current[0]["start"] > max_len):
            segments.append(_segment(current))
            current = []
        current.append(w)
    if current:
        segments.append(_segment(current))
    return segments


def _segment(words: list[dict]) -> dict:
    return {"start": words[0]["start"], "end": words[-1]["end"], "speaker": "",
            "text": " ".join(w["w"] for w in words), "words": words}


# -- the stage ---------------------------------------------------------------------------------

def _audio_fingerprint(audio: Path) -> str:
    return hash_file(audio)[0][:16]


def _pcm_audio(audio: Path) -> Path:
    """`audio` if it is mono 16-bit PCM WAV (any rate: Kaldi resamples), else a 16 kHz copy."""
    try:
        with wave.open(str(audio), "rb") as wav:
            if wav.getnchannels() == 1 and wav.getsampwidth() == 2:
                return audio
    except (wave.Error, EOFError):
        pass
    from .media import extract_asr_audio
    converted = audio.with_name(audio.stem + "-pcm16k.wav")
    if not converted.exists():
        part = audio.with_name(audio.stem + "-pcm16k.part.wav")
        extract_asr_audio(audio, part)
        os.replace(part, converted)
    return converted


def decode(audio: Path, model: models.InstalledModel, workdir: Path, workers: int,
           progress: Progress | None = None, max_len: float | None = None) -> list[dict]:
    """Words of `audio`, decoded in chunks by `workers` processes; chunks already decoded in
    `workdir` (by a run that was stopped) are read back instead of decoded again."""
    with wave.open(str(audio), "rb") as wav:
        rate, total = wav.getframerate(), wav.getnframes()
    duration = total / rate
    chunks = plan_chunks(duration, find_silences(audio), rate, max_len or CHUNK_MAX)
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[Chunk, list[dict]] = {}
    todo = []
    for chunk in chunks:
        path = workdir / chunk.name
        if chunk.silent:
            results[chunk] = []
        elif path.exists():
            try:
                results[chunk] = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, OSError):
                todo.append(chunk)
        else:
            todo.append(chunk)
    done = sum(c.end - c.start for c in results)

    def report() -> None:
        if progress:
            progress(min(1.0, done / total) if total else 1.0)

    report()
    if todo:
        # Longest first: the pool ends with short chunks, so no worker idles long at the end.
        todo.sort(key=lambda c: c.start - c.end)
        context = multiprocessing.get_context("spawn")
        try:
            with cf.ProcessPoolExecutor(max_workers=max(1, min(workers, len(todo))), mp_context=context,
                                        initializer=_init_worker, initargs=(str(model.path),)) as pool:
                futures = {pool.submit(_decode_chunk, str(audio), c, str(workdir / c.name)): c
                           for c in todo}
                try:
                    for future in cf.as_completed(futures):
                        chunk = futures[future]
                        results[chunk] = future.result()
                        done += chunk.end - chunk.start
                        report()
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
        except BrokenProcessPool:
            raise ModelBroken(f"The speech recognizer stopped while decoding with the model "
                              f"'{model.name}' (out of memory, or a damaged model); check it with "
                              "`tcd model list` and run `tcd transcribe` again.") from None
    return merge_words([results[c] for c in chunks], duration)


def transcribe_recording(archive, recording, audio_path: Path, progress: Progress | None = None,
                         workers: int | None = None):
    """Transcribe one recording from its ASR audio and store the result as the next machine
    version; None when the recording has no sound. A transcript of silence has no segments.
    Raises ModelMissing when no model is installed (the transcript then waits for one)."""
    if not recording.has_audio:
        return None
    model = models.resolve(archive.settings)
    audio_path = Path(audio_path)
    if not audio_path.is_file():
        raise NotFound(f"The audio to transcribe ({audio_path}) is missing; run "
                       f"`tcd transcribe {recording.id}` to make it again from the stored recording.")
    started = time.monotonic()
    audio = _pcm_audio(audio_path)
    workdir = audio_path.parent / f"asr-chunks-{model.name}-{_audio_fingerprint(audio)}"
    words = decode(audio, model, workdir, workers or archive.settings.worker_count, progress)
    transcript = save_transcript(archive, recording.id, segment_words(words), kind="machine",
                                 author="vosk", engine="vosk", model=model.name,
                                 seconds=time.monotonic() - started)
    shutil.rmtree(workdir, ignore_errors=True)
    if audio != audio_path:
        audio.unlink(missing_ok=True)
    return transcript


def _staged_audio(archive, recording) -> Path | None:
    """The ASR audio the ingest pipeline left in a job's work folder, if it is still there."""
    for job in archive.catalog.jobs_for_recording(recording.id):
        path = archive.settings.staging_dir / str(job.id) / "asr.wav"
        if path.is_file():
            return path
    return None


def transcribe_stored(archive, recording, progress: Progress | None = None,
                      workers: int | None = None):
    """Transcribe a recording that is already archived (`tcd transcribe`): from the pipeline's
    ASR audio when staging still has it, else from audio made again from the stored original in
    `staging/transcribe-<id>/` (kept until done, so a stopped run resumes there too)."""
    if not recording.has_audio:
        return None
    models.resolve(archive.settings)  # no model: say so before converting anything
    audio = _staged_audio(archive, recording)
    if audio is not None:
        return transcribe_recording(archive, recording, audio, progress, workers)
    folder = archive.settings.staging_dir / f"transcribe-{recording.id}"
    audio = folder / "asr.wav"
    if not audio.is_file():
        from .media import extract_asr_audio
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / "asr.part.wav"
        sha = recording.original_sha256 or recording.access_sha256
        with archive.store.materialize(sha) as source:
            extract_asr_audio(source, part, recording.duration)
        os.replace(part, audio)
    transcript = transcribe_recording(archive, recording, audio, progress, workers)
    shutil.rmtree(folder, ignore_errors=True)
    return transcript
