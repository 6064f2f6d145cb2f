#!/usr/bin/env python
"""Decoding speed: utterances/s and real-time factor of greedy, pyctcdecode + LM and flashlight + LM
(1 and 2 beam-search workers) against the naive baseline of calling pyctcdecode's ``decode_beams``
one utterance at a time in one process. Every setting is timed end to end (audio loading, batched
acoustic-model forward pass, search, confidence scoring for selftrain's pipeline) and its WER is
reported beside it, so speed is compared at equal accuracy.

    python benchmarks/decode_speed.py --model RUN/model --manifest dev.csv --lm lm.bin

Writes ``benchmarks/results/decode_speed.md`` and ``.json`` (only from a real run like the above).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def naive_baseline(model, utterances, lm: str, beam: int, alpha: float, beta: float, batch_size: int) -> list[str]:
    """The usual script: forward pass (``batch_size`` utterances at a time), then ``decode_beams`` per
    utterance in this process. ``batch_size=1`` is the fully naive one-utterance-at-a-time loop."""
    from pyctcdecode import build_ctcdecoder

    from selftrain.data.audio import load_audio
    from selftrain.lm import read_unigrams

    decoder = build_ctcdecoder(model.tokenizer.ctc_labels(), lm, unigrams=read_unigrams(lm), alpha=alpha, beta=beta)
    texts = []
    for start in range(0, len(utterances), batch_size):
        wavs = [load_audio(u.wav, model.sample_rate) for u in utterances[start : start + batch_size]]
        lengths = torch.tensor([len(w) for w in wavs], dtype=torch.float32)
        with torch.inference_mode():
            log_probs, frames = model.log_probs(torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True),
                                                lengths / lengths.max())
        for i, n in enumerate(frames.tolist()):
            texts.append(decoder.decode_beams(log_probs[i, :n].numpy(), beam_width=beam)[0][0])
    return texts


def pipeline(model, utterances, lm: str | None, config) -> list[str]:
    """selftrain's decoder: pooled workers, blank-frame skipping, confidence scoring."""
    from selftrain.decode import DecoderPool, iter_decoded

    with DecoderPool(config, model.tokenizer.ctc_labels(), lm) as decoder:
        return [hyp.text for _, hyp in iter_decoded(model, utterances, decoder, progress=False)]


def precomputed_log_probs(model, utterances, batch_size: int) -> list:
    """The acoustic model's outputs for every utterance (the search-only rows start from these)."""
    from selftrain.data.audio import load_audio
    from selftrain.decode.run import acoustic_log_probs

    outputs = []
    for start in range(0, len(utterances), batch_size):
        outputs += acoustic_log_probs(model, [load_audio(u.wav, model.sample_rate) for u in utterances[start : start + batch_size]])
    return outputs


def naive_search(labels, log_probs, lm: str, beam: int, alpha: float, beta: float) -> list[str]:
    """``decode_beams`` one utterance at a time in this process, on precomputed log-probabilities."""
    from pyctcdecode import build_ctcdecoder

    from selftrain.lm import read_unigrams

    decoder = build_ctcdecoder(labels, lm, unigrams=read_unigrams(lm), alpha=alpha, beta=beta)
    return [decoder.decode_beams(x, beam_width=beam)[0][0] for x in log_probs]


def pooled_search(labels, log_probs, lm: str, config) -> list[str]:
    """selftrain's worker pool (blank-frame skipping, n-best scores, confidences) on the same inputs."""
    from selftrain.decode import DecoderPool

    with DecoderPool(config, labels, lm) as decoder:
        return [hyp.text for hyp in decoder.decode(log_probs)]


def timed(run: Callable[[], list[str]], repeats: int) -> tuple[float, list[str]]:
    best, texts = float("inf"), []
    for _ in range(repeats):
        started = time.perf_counter()
        texts = run()
        best = min(best, time.perf_counter() - started)
    return best, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder")
    parser.add_argument("--manifest", required=True, help="labeled manifest (references give WER)")
    parser.add_argument("--lm", required=True, help="KenLM model from 'selftrain lm build'")
    parser.add_argument("--beam", type=int, default=32)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--limit", type=int, default=200, help="utterances used (first N of the manifest)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per setting; the fastest is reported")
    parser.add_argument("--out", default=str(RESULTS / "decode_speed"), help="output path without extension")
    parser.add_argument("--state-cache", default=None,
                        help="frozen-state cache folder of a pretrained encoder (default: none, the encoder runs in every setting)")
    args = parser.parse_args()

    from selftrain.data.manifest import read_manifest
    from selftrain.decode import DecoderConfig, error_rates
    from selftrain.models import load_acoustic_model

    model = load_acoustic_model(args.model, "cpu", args.state_cache)
    model.train(False)
    utterances = [u for u in read_manifest(args.manifest) if u.reference is not None][: args.limit]
    refs = [model.tokenizer.normalizer(u.reference or "") for u in utterances]
    audio_seconds = sum(u.duration for u in utterances)
    common = {"beam_width": args.beam, "alpha": args.alpha, "beta": args.beta, "batch_size": args.batch_size}
    settings: list[tuple[str, Callable[[], list[str]]]] = [
        ("naive: 1 utterance at a time (forward + decode_beams), 1 process",
         lambda: naive_baseline(model, utterances, args.lm, args.beam, args.alpha, args.beta, 1)),
        (f"naive, batched forward ({args.batch_size}) + decode_beams per utterance, 1 process",
         lambda: naive_baseline(model, utterances, args.lm, args.beam, args.alpha, args.beta, args.batch_size)),
        ("greedy", lambda: pipeline(model, utterances, None, DecoderConfig(decoder="greedy", workers=0, **common))),
    ]
    for decoder in ("pyctcdecode", "flashlight"):
        for workers in (1, 2):
            config = DecoderConfig(decoder=decoder, workers=workers, **common)
            settings.append((f"{decoder} + LM, {workers} worker{'s' if workers > 1 else ''}",
                             lambda c=config: pipeline(model, utterances, args.lm, c)))
    labels = model.tokenizer.ctc_labels()
    log_probs = precomputed_log_probs(model, utterances, args.batch_size)
    settings.append(("search only: naive decode_beams loop, 1 process",
                     lambda: naive_search(labels, log_probs, args.lm, args.beam, args.alpha, args.beta)))
    for decoder in ("pyctcdecode", "flashlight"):
        for workers in (1, 2):
            config = DecoderConfig(decoder=decoder, workers=workers, **common)
            settings.append((f"search only: {decoder} + LM, {workers} worker{'s' if workers > 1 else ''}",
                             lambda c=config: pooled_search(labels, log_probs, args.lm, c)))
    rows = []
    for name, run in settings:
        seconds, texts = timed(run, args.repeats)
        wer, cer = error_rates(refs, texts)
        rows.append({"setting": name, "seconds": round(seconds, 3), "utt_per_s": round(len(texts) / seconds, 2),
                     "rtf": round(seconds / audio_seconds, 4), "wer": round(wer, 4), "cer": round(cer, 4)})
        print(json.dumps(rows[-1]), flush=True)
    naive, naive_batched, greedy = rows[0]["seconds"], rows[1]["seconds"], rows[2]["seconds"]
    naive_search_seconds = next(r["seconds"] for r in rows if r["setting"].startswith("search only: naive"))
    for row in rows:
        if row["setting"].startswith("search only"):
            row["vs_naive_speedup"] = round(naive_search_seconds / row["seconds"], 2)
            row["vs_naive_batched_speedup"] = row["vs_greedy_cost"] = None
            continue
        row["vs_naive_speedup"] = round(naive / row["seconds"], 2)
        row["vs_naive_batched_speedup"] = round(naive_batched / row["seconds"], 2)
        row["vs_greedy_cost"] = round(row["seconds"] / greedy, 2)
    meta = {"command": "python benchmarks/decode_speed.py " + " ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                if v is not None and (k != "out" or v != str(RESULTS / "decode_speed"))),
            "model": args.model, "manifest": args.manifest, "lm": args.lm, "utterances": len(utterances),
            "audio_seconds": round(audio_seconds, 2), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "machine": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    write_results(Path(args.out), meta, rows)


def write_results(out: Path, meta: dict, rows: list[dict]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = ["# Decoding speed", "", f"Command: `{meta['command']}`", "",
             f"{meta['utterances']} utterances, {meta['audio_seconds']} s of audio; {meta['cpus']} CPUs, "
             f"torch threads {meta['torch_threads']}; {meta['date']}. Times are end to end (audio loading, "
             "batched forward pass, search; selftrain's pipeline also scores confidence), fastest of the repeats. "
             "'search only' rows start from precomputed log-probabilities; their speed-up is against the "
             "search-only naive loop.",
             "", "| setting | s | utt/s | RTF | WER | CER | speed-up vs naive | vs naive batched | cost vs greedy |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    def ratio(value) -> str:
        return "" if value is None else f"{value}x"

    lines += [f"| {r['setting']} | {r['seconds']} | {r['utt_per_s']} | {r['rtf']} | {r['wer']} | {r['cer']} | "
              f"{ratio(r['vs_naive_speedup'])} | {ratio(r['vs_naive_batched_speedup'])} | {ratio(r['vs_greedy_cost'])} |"
              for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
