#!/usr/bin/env python
"""Peak memory of decoding and selecting as the unlabeled set grows (1x and 10x utterances).

    python benchmarks/stream_memory.py --sizes 2000 20000 --out /tmp/stream_memory

Decoding streams its hypotheses to JSON lines as they come, so its peak memory should not depend
on how many utterances the manifest has (only the manifest rows themselves are held). Selection
ranks all utterances against each other (keep fractions, calibration), so it holds every record
and grows with the set; the benchmark measures by how much. Each (stage, size) runs in a fresh
process so that its peak resident set size (``ru_maxrss``) is its own.

The audio: ``--distinct`` different clips of noise and tones (1-3 s), repeated under new ids up to
the size asked; the model: an untrained ``tiny`` CTC model (the memory of the search and the
writer does not depend on the weights); greedy decoding, plus beam search with a 3-gram LM when
``--lm`` is given. Writes ``benchmarks/results/stream_memory.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLE_RATE = 16000


def make_audio(folder: Path, distinct: int, seed: int = 0) -> list[tuple[Path, float]]:
    """``distinct`` short clips (noise with a few tones) and their durations."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for k in range(distinct):
        seconds = float(rng.uniform(1.0, 3.0))
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        wave = 0.05 * rng.standard_normal(t.size)
        for freq in rng.uniform(150, 3000, size=3):
            wave += 0.1 * np.sin(2 * np.pi * freq * t)
        path = folder / f"clip{k:03d}.wav"
        sf.write(str(path), wave.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        clips.append((path, seconds))
    return clips


def write_manifest(path: Path, clips: list[tuple[Path, float]], size: int) -> Path:
    """A SpeechBrain CSV of ``size`` unlabeled rows cycling through ``clips``."""
    lines = ["ID,duration,wav,spk_id,wrd"]
    for i in range(size):
        wav, seconds = clips[i % len(clips)]
        lines.append(f"u{i:07d},{seconds:.3f},{wav},spk{i % 7},")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_model(folder: Path) -> Path:
    import torch

    from selftrain.data.tokenizer import CharTokenizer
    from selftrain.models import export_model
    from selftrain.models.acoustic import build_model
    from selftrain.models.config import model_preset
    from selftrain.text import Alphabet

    tokenizer = CharTokenizer(Alphabet.from_texts(["abcdefghijklmnopqrstuvwxyz'"]))
    torch.manual_seed(0)  # the same untrained weights, hence the same hypotheses, in every run
    return export_model(build_model(model_preset("tiny"), tokenizer.vocab_size), tokenizer, folder)


def make_lm(folder: Path, order: int = 3) -> Path:
    from lm import LMBuildConfig, build_lm

    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "log", "ate", "food", "likes", "my", "are", "friends", "is", "and"]
    rng = np.random.default_rng(1)
    text = folder / "lm_text.txt"
    text.write_text("\n".join(" ".join(rng.choice(words, size=8)) for _ in range(2000)) + "\n", encoding="utf-8")
    out = folder / "lm.bin"
    build_lm(text, out, LMBuildConfig(order=order))
    return out


def child_decode(model_dir: str, manifest: str, out: str, lm: str | None) -> dict:
    """Decode ``manifest`` into ``out`` (this process) and return the figures."""
    import torch

    from selftrain.data.manifest import read_manifest
    from selftrain.decode import DecoderConfig, TeacherDecoder, decode_manifest
    from selftrain.models import load_acoustic_model

    torch.set_num_threads(1)
    model = load_acoustic_model(model_dir)
    config = DecoderConfig(decoder="greedy") if lm is None else DecoderConfig(beam_width=8, workers=0)
    with TeacherDecoder(config, model.tokenizer.ctc_labels(), lm, "lm" if lm else "greedy") as decoder:
        report = decode_manifest(model, read_manifest(manifest), decoder, out, progress=False)
    return {"decoded": report.decoded, "seconds": report.seconds}


def child_select(hyps: str, manifest: str, out: str) -> dict:
    """Select from ``hyps`` (this process) with the default keep-fraction policy."""
    from selftrain.select import SelectConfig
    from selftrain.select.pipeline import run_selection

    started = time.monotonic()
    result = run_selection([hyps], out, SelectConfig(keep_fraction=0.5), manifest=manifest)
    return {"selected": sum(u.decision.kept for u in result.utterances if u.decision), "seconds": round(time.monotonic() - started, 1)}


def run_child(*args: str) -> dict:
    """Run one measurement in a fresh interpreter; its figures plus its peak RSS in MiB."""
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child_main(args: list[str]) -> None:
    import tracemalloc

    stage, rest = args[0], args[1:]
    import selftrain.decode  # noqa: F401 (imports first, so the heap figure below is the stage's own)
    import selftrain.select.pipeline  # noqa: F401

    tracemalloc.start()
    if stage == "decode":
        figures = child_decode(rest[0], rest[1], rest[2], rest[3] if len(rest) > 3 else None)
    else:
        figures = child_select(*rest)
    figures["heap_peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    tracemalloc.stop()
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(figures))


def measure(out: Path, sizes: list[int], distinct: int, with_lm: bool) -> list[dict]:
    clips = make_audio(out / "audio", distinct)
    model = make_model(out / "model")
    lm = str(make_lm(out)) if with_lm else None
    rows = []
    for size in sizes:
        manifest = write_manifest(out / f"unlabeled_{size}.csv", clips, size)
        for decoder, lm_path in [("greedy", None), *([("beam+LM", lm)] if lm else [])]:
            hyps = out / f"hyps_{decoder.replace('+', '_')}_{size}.jsonl"
            hyps.unlink(missing_ok=True)
            figures = run_child("decode", str(model), str(manifest), str(hyps), *([lm_path] if lm_path else []))
            rows.append({"stage": f"decode ({decoder})", "utterances": size, "file_mib": round(hyps.stat().st_size / 2**20, 1), **figures})
            print(rows[-1], flush=True)
        hyps = out / f"hyps_greedy_{size}.jsonl"
        figures = run_child("select", str(hyps), str(manifest), str(out / f"select_{size}"))
        rows.append({"stage": "select", "utterances": size, "file_mib": round(hyps.stat().st_size / 2**20, 1), **figures})
        print(rows[-1], flush=True)
    return rows


def write_results(rows: list[dict], command: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    meta = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.platform()}, {__import__('os').cpu_count()} CPU cores"}
    (RESULTS / "stream_memory.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    lines = ["# Peak memory as the unlabeled set grows", "", f"Command: `{command}`  ",
             f"Date: {meta['date']}; machine: {meta['machine']}.", "",
             "Peak RSS is the process' (torch and its libraries are most of it); the Python heap peak is what",
             "the stage itself allocated at its highest (tracemalloc, after the imports; tensors not included).", "",
             "| stage | utterances | hypotheses file (MiB) | peak RSS (MiB) | Python heap peak (MiB) | seconds |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['stage']} | {r['utterances']} | {r['file_mib']} | {r['peak_rss_mib']} | {r['heap_peak_mib']} | {r['seconds']} |"
              for r in rows]
    lines += ["", "Growth from the smallest to the largest set:", ""]
    for stage in dict.fromkeys(r["stage"] for r in rows):
        mine = [r for r in rows if r["stage"] == stage]
        first, last = mine[0], mine[-1]
        span = max(last["utterances"] - first["utterances"], 1) / 1000
        lines.append(f"- {stage} ({last['utterances'] // first['utterances']}x utterances): peak RSS "
                     f"{first['peak_rss_mib']} -> {last['peak_rss_mib']} MiB, Python heap {first['heap_peak_mib']} -> "
                     f"{last['heap_peak_mib']} MiB ({(last['heap_peak_mib'] - first['heap_peak_mib']) / span:+.2f} MiB "
                     "per 1000 utterances)")
    (RESULTS / "stream_memory.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000], help="utterance counts (default 2000 20000)")
    parser.add_argument("--distinct", type=int, default=40, help="different audio clips (default 40)")
    parser.add_argument("--lm", action="store_true", help="also decode with beam search + a 3-gram LM")
    parser.add_argument("--out", type=Path, default=Path("stream_memory"), help="work folder")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write benchmarks/results")
    options = parser.parse_args()
    rows = measure(options.out.resolve(), options.sizes, options.distinct, options.lm)
    if not options.no_write:
        # The work folder is left out of the recorded command: it changes no figure.
        shown = [a for a, prev in zip(sys.argv[1:], ["", *sys.argv[1:]], strict=False) if a != "--out" and prev != "--out"]
        write_results(rows, " ".join(["python benchmarks/stream_memory.py", *shown]))


if __name__ == "__main__":
    main()
