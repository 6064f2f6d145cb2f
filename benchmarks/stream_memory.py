#!/usr/bin/env python
"""Peak memory of decoding and selecting as the unlabeled set grows (e.g. 10,000 and 100,000 utterances).

    python benchmarks/stream_memory.py --sizes 10000 100000 --lm --out /tmp/stream_memory

Decoding reads the manifest as a stream (:class:`selftrain.data.manifest.ManifestStream`) and
streams its hypotheses to JSON lines as they come, so its peak memory should not depend on how many
utterances the manifest has. Selection is measured twice on the same hypotheses: streamed
(:func:`selftrain.select.stream.run_selection_stream`, what a generation runs: one rank value per
utterance is held) and, at the smallest size, in memory (:func:`selftrain.select.pipeline.run_selection`,
every record held, what it grows from), unless ``--no-in-memory``. Each (stage, size) runs in a fresh process so that its peak
resident set size (``ru_maxrss``) is its own.

The audio: ``--distinct`` different clips of noise and tones (``--seconds``, 1-3 s by default),
repeated under new ids up to the size asked; the model: an untrained ``tiny`` CTC model (the memory
of the search and the writer does not depend on the weights); greedy decoding, or beam search with
a 3-gram LM with ``--lm`` (``--greedy`` adds greedy decoding then). Selection reads the beam
search's hypotheses at the smallest size; at larger sizes (or with ``--synthetic-select``), a
synthetic hypothesis file of the same record shape and random scores (decoding 100,000 utterances
twice would only cost time). Writes ``benchmarks/results/stream_memory.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLE_RATE = 16000


def make_audio(folder: Path, distinct: int, seconds_range: tuple[float, float] = (1.0, 3.0),
               seed: int = 0) -> list[tuple[Path, float]]:
    """``distinct`` short clips (noise with a few tones) and their durations."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for k in range(distinct):
        seconds = float(rng.uniform(*seconds_range))
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
    from selftrain.lm import LMBuildConfig, build_lm

    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "log", "ate", "food", "likes", "my", "are", "friends", "is", "and"]
    rng = np.random.default_rng(1)
    text = folder / "lm_text.txt"
    text.write_text("\n".join(" ".join(rng.choice(words, size=8)) for _ in range(2000)) + "\n", encoding="utf-8")
    out = folder / "lm.bin"
    build_lm(text, out, LMBuildConfig(order=order))
    return out


BEAM_WIDTH = 8  # beam search settings of the benchmark: small, the search's memory is per batch
# The untrained model's posteriors are nearly uniform (about -3.4 per token): with the default
# token_min_logp (-5) every token would be expanded in every frame, 5x slower for the same memory.
TOKEN_MIN_LOGP = -2.0
CONFIDENCE_SCORES = ("entropy_tsallis_exp", "max_prob", "lm_margin")


def child_decode(model_dir: str, manifest: str, out: str, lm: str | None) -> dict:
    """Decode ``manifest`` into ``out`` (this process), reading it as a stream, and return the figures."""
    import torch

    from selftrain.data.manifest import ManifestStream
    from selftrain.decode import DecoderConfig, DecoderPool, decode_manifest
    from selftrain.models import load_acoustic_model

    torch.set_num_threads(1)
    model = load_acoustic_model(model_dir)
    config = (DecoderConfig(decoder="greedy") if lm is None
              else DecoderConfig(beam_width=BEAM_WIDTH, token_min_logp=TOKEN_MIN_LOGP, workers=0))
    with DecoderPool(config, model.tokenizer.ctc_labels(), lm, "lm" if lm else "greedy") as decoder:
        report = decode_manifest(model, ManifestStream(manifest), decoder, out, progress=False)
    return {"decoded": report.decoded, "seconds": report.seconds}


def child_select(hyps: str, manifest: str, out: str, how: str) -> dict:
    """Select from ``hyps`` (this process) with a keep-fraction policy, streamed or in memory."""
    from selftrain.select import SelectConfig
    from selftrain.select.pipeline import run_selection
    from selftrain.select.stream import run_selection_stream

    started = time.monotonic()
    config = SelectConfig(keep_fraction=0.5)
    if how == "streamed":
        kept = run_selection_stream([hyps], out, config, manifest=manifest).summary["kept"]
    else:
        result = run_selection([hyps], out, config, manifest=manifest)
        kept = sum(u.decision.kept for u in result.utterances if u.decision)
    return {"selected": kept, "seconds": round(time.monotonic() - started, 1)}


def synthetic_hypotheses(path: Path, manifest: Path, seed: int = 0) -> Path:
    """A hypothesis file for every row of ``manifest``: records shaped like decoding's (words with
    spans and scores, a 2-best list), with random text and scores."""
    from selftrain.data.manifest import iter_manifest
    from selftrain.io import JsonlWriter
    from selftrain.record import Hypothesis, NBestEntry, Utterance, Word

    rng = np.random.default_rng(seed)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "log", "ate", "food", "likes", "my", "are", "friends"]
    path.unlink(missing_ok=True)
    with JsonlWriter(path) as out:
        for row in iter_manifest(manifest):
            count = int(rng.integers(1, max(2, int(3 * row.duration) + 2)))  # about a normal speaking rate
            text = " ".join(rng.choice(words, size=count))
            spans = [Word(w, 4 * i, 4 * i + 3, {s: round(float(rng.random()), 4) for s in CONFIDENCE_SCORES})
                     for i, w in enumerate(text.split())]
            hyp = Hypothesis("lm", text, spans, nbest=[NBestEntry(text, -3.0, -5.0, -8.0), NBestEntry(text[:-1], -4.0, -6.0, -9.0)],
                             scores={s: round(float(rng.random()), 4) for s in CONFIDENCE_SCORES},
                             num_frames=4 * len(spans) + 2, decoder="pyctcdecode")
            out.write(Utterance(row.id, row.wav, row.duration, hypotheses=[hyp]).to_dict())
    return path


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
    import selftrain.select.stream  # noqa: F401

    tracemalloc.start()
    if stage == "decode":
        figures = child_decode(rest[0], rest[1], rest[2], rest[3] if len(rest) > 3 else None)
    else:
        figures = child_select(*rest)
    figures["heap_peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    tracemalloc.stop()
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(figures))


@dataclass(frozen=True)
class Plan:
    """What to measure (the command-line options)."""

    sizes: tuple[int, ...]
    distinct: int = 40
    seconds: tuple[float, float] = (1.0, 3.0)
    with_lm: bool = False
    greedy: bool = False
    in_memory: bool = True
    synthetic_select: bool = False


def _decode_rows(out: Path, plan: Plan, model: Path, manifest: Path, size: int, lm: str | None) -> tuple[list[dict], Path]:
    """Decode ``manifest`` with each decoder asked for; the rows and the hypotheses selection reads."""
    decoders = ([("greedy", None)] if plan.greedy or lm is None else []) + ([("beam+LM", lm)] if lm else [])
    rows, last = [], out
    for decoder, lm_path in decoders:
        hyps = out / f"hyps_{decoder.replace('+', '_')}_{size}.jsonl"
        hyps.unlink(missing_ok=True)
        figures = run_child("decode", str(model), str(manifest), str(hyps), *([lm_path] if lm_path else []))
        rows.append({"stage": f"decode ({decoder})", "utterances": size, "file_mib": round(hyps.stat().st_size / 2**20, 1), **figures})
        print(rows[-1], flush=True)
        last = hyps
    return rows, last


def measure(out: Path, plan: Plan) -> list[dict]:
    clips = make_audio(out / "audio", plan.distinct, plan.seconds)
    model = make_model(out / "model")
    lm = str(make_lm(out)) if plan.with_lm else None
    rows = []
    for size in plan.sizes:
        manifest = write_manifest(out / f"unlabeled_{size}.csv", clips, size)
        decoded, hyps = _decode_rows(out, plan, model, manifest, size, lm)
        rows += decoded
        source = "decoded"
        if plan.synthetic_select or size != min(plan.sizes):
            hyps, source = synthetic_hypotheses(out / f"hyps_synthetic_{size}.jsonl", manifest), "synthetic"
        for how in ("streamed", *(["in memory"] if plan.in_memory and size == min(plan.sizes) else [])):
            figures = run_child("select", str(hyps), str(manifest), str(out / f"select_{size}_{how.replace(' ', '_')}"), how)
            rows.append({"stage": f"select ({how})", "utterances": size, "file_mib": round(hyps.stat().st_size / 2**20, 1),
                         "hypotheses": source, **figures})
            print(rows[-1], flush=True)
    return rows


FLAT_WITHIN = 0.10  # the target: peak RSS at the largest size within 10 % of the smallest's


def _growth_line(stage: str, rows: list[dict]) -> str:
    first, last = rows[0], rows[-1]
    span = max(last["utterances"] - first["utterances"], 1) / 1000
    change = last["peak_rss_mib"] / first["peak_rss_mib"] - 1
    verdict = "flat" if abs(change) <= FLAT_WITHIN else "not flat"
    return (f"- {stage} ({last['utterances'] // first['utterances']}x utterances): peak RSS {first['peak_rss_mib']} -> "
            f"{last['peak_rss_mib']} MiB ({100 * change:+.1f} %: {verdict} within {100 * FLAT_WITHIN:.0f} %), "
            f"Python heap {first['heap_peak_mib']} -> {last['heap_peak_mib']} MiB "
            f"({(last['heap_peak_mib'] - first['heap_peak_mib']) / span:+.2f} MiB per 1000 utterances)")


def write_results(rows: list[dict], command: str, meta: dict | None = None) -> None:
    """Write the JSON (unless ``meta`` is given: re-rendering a recorded run) and the Markdown."""
    RESULTS.mkdir(exist_ok=True)
    if meta is None:
        meta = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "machine": f"{platform.platform()}, {__import__('os').cpu_count()} CPU cores"}
        (RESULTS / "stream_memory.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    lines = ["# Peak memory as the unlabeled set grows", "", f"Command: `{command}`  ",
             f"Date: {meta['date']}; machine: {meta['machine']}.", "",
             "Peak RSS is the process' (torch and its libraries are most of it); the Python heap peak is what",
             "the stage itself allocated at its highest (tracemalloc, after the imports; tensors not included).",
             f"Beam search: width {BEAM_WIDTH}, token_min_logp {TOKEN_MIN_LOGP} (the untrained model's posteriors are",
             "nearly uniform), 3-gram LM, in the decoding process (no workers). Selection keeps half",
             "(keep fraction 0.5) of one teacher's hypotheses: those decoded at the smallest size, else a synthetic",
             "file of the same record shape (column `hypotheses`).", "",
             "| stage | utterances | hypotheses | hypotheses file (MiB) | peak RSS (MiB) | Python heap peak (MiB) | seconds |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['stage']} | {r['utterances']} | {r.get('hypotheses', '-')} | {r['file_mib']} | {r['peak_rss_mib']} | "
              f"{r['heap_peak_mib']} | {r['seconds']} |" for r in rows]
    lines += ["", "Growth from the smallest to the largest set:", ""]
    for stage in dict.fromkeys(r["stage"] for r in rows):
        mine = [r for r in rows if r["stage"] == stage]
        lines.append(_growth_line(stage, mine) if len(mine) > 1 else
                     f"- {stage}: measured at {mine[0]['utterances']} utterances only (what the streamed one is compared with)")
    (RESULTS / "stream_memory.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000], help="utterance counts (default 10000 100000)")
    parser.add_argument("--distinct", type=int, default=40, help="different audio clips (default 40)")
    parser.add_argument("--seconds", type=float, nargs=2, default=[1.0, 3.0], help="clip lengths drawn from this range (default 1 3)")
    parser.add_argument("--lm", action="store_true", help="decode with beam search + a 3-gram LM")
    parser.add_argument("--greedy", action="store_true", help="with --lm, also decode greedily")
    parser.add_argument("--no-in-memory", action="store_true", help="measure the streamed selection only")
    parser.add_argument("--synthetic-select", action="store_true", help="select from synthetic hypotheses at every size")
    parser.add_argument("--out", type=Path, default=Path("stream_memory"), help="work folder")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write benchmarks/results")
    parser.add_argument("--rewrite", action="store_true", help="only re-render the Markdown from the recorded JSON")
    options = parser.parse_args()
    if options.rewrite:
        recorded = json.loads((RESULTS / "stream_memory.json").read_text())
        write_results(recorded["rows"], recorded["command"], recorded)
        return
    plan = Plan(tuple(options.sizes), options.distinct, tuple(options.seconds), options.lm, options.greedy,
                not options.no_in_memory, options.synthetic_select)
    rows = measure(options.out.resolve(), plan)
    if not options.no_write:
        # The work folder is left out of the recorded command: it changes no figure.
        shown = [a for a, prev in zip(sys.argv[1:], ["", *sys.argv[1:]], strict=False) if a != "--out" and prev != "--out"]
        write_results(rows, " ".join(["python benchmarks/stream_memory.py", *shown]))


if __name__ == "__main__":
    main()
