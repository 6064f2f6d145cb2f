#!/usr/bin/env python
"""Training-step cost of CTC alone vs CTC + each SSL objective vs each loss-combination strategy.

Every configuration trains the same model preset on the same batch through the real training
step (``SelftrainBrain.fit_batch``: augmentation, masking, SSL targets, combination, optimizer).
Steps are timed round-robin over the configurations (so background load hits them alike); the
first step of each is a warm-up (it also fills the SSL target cache, as epoch 1 does). Peak memory
is measured per configuration in a fresh subprocess: the growth of peak RSS (CPU, Linux) or of peak
allocated memory (CUDA) over the current level during two steps after a warm-up step.

    python benchmarks/train_step.py --labeled labeled.csv --preset cpu-small --batch-seconds 40 \
        --steps 6 --out benchmarks/results/train_step_cpu.json
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS: dict[str, dict] = {
    "ctc_only": {},
    "ctc+reconstruction": {"ssl": {"objectives": ["reconstruction"]}},
    "ctc+best_rq": {"ssl": {"objectives": ["best_rq"]}},
    "ctc+best_rq(no_cache)": {"ssl": {"objectives": ["best_rq"], "cache_targets": False}},
    "ctc+contrastive": {"ssl": {"objectives": ["contrastive"]}},
    "ctc+all_ssl": {"ssl": {"objectives": ["reconstruction", "best_rq", "contrastive"]}},
    "ctc+best_rq(separate_forward)": {"ssl": {"objectives": ["best_rq"], "shared_forward": False}},
    "curriculum(best_rq)": {"ssl": {"objectives": ["best_rq"]}, "combine": {"strategy": "curriculum"}},
    "gradnorm(best_rq)": {"ssl": {"objectives": ["best_rq"]}, "combine": {"strategy": "gradnorm"}},
    "pcgrad(best_rq)": {"ssl": {"objectives": ["best_rq"]}, "combine": {"strategy": "pcgrad"}},
    "bl_just(best_rq)": {"ssl": {"objectives": ["best_rq"]}, "combine": {"strategy": "bl_just"}},
}


def _tone_corpus(folder: Path, count: int = 48) -> str:
    """A manifest of noisy tone clips (2-4 s) when no real manifest is given."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    lines = ["ID,duration,wav,spk_id,wrd"]
    for i in range(count):
        seconds = 2 + 2 * rng.random()
        t = np.arange(int(seconds * 16000)) / 16000
        wav = 0.3 * np.sin(2 * np.pi * (200 + 50 * (i % 7)) * t) + 0.05 * rng.standard_normal(t.size)
        path = folder / f"t{i}.wav"
        sf.write(str(path), wav.astype(np.float32), 16000)
        lines.append(f"t{i},{seconds:.2f},{path},s,{'ab ba ' * (1 + i % 4)}".strip())
    (folder / "tones.csv").write_text("\n".join(lines) + "\n")
    return str(folder / "tones.csv")


def _build(name: str, args, folder: Path):
    from selftrain.models.acoustic import subsampling
    from selftrain.overrides import deep_merge
    from selftrain.train.config import load_train_config
    from selftrain.train.data import prepare_data
    from selftrain.train.run import _run_options, build_run

    overrides = deep_merge({"out": str(folder / name.replace("(", "_").replace(")", "")), "device": args.device,
                            "precision": args.precision, "augment": {"specaugment": True},
                            "data": {"labeled": [args.labeled], "batch_seconds": args.batch_seconds, "mix_labeled": 1.0}},
                           CONFIGS[name])
    config = load_train_config(args.preset, overrides=overrides)
    prepared = prepare_data(config.data, 16000, subsampling(config.model) * config.model.features.hop_length_ms / 1000)
    run = build_run(config, prepared, _run_options(config))
    run.brain.init_optimizers()
    run.brain.modules.train()
    run.brain.on_stage_start(__import__("speechbrain").Stage.TRAIN, 1)
    return run


def _batch(run, seconds: float):
    """The same utterances for every configuration: the first ``seconds`` of audio in manifest order."""
    from speechbrain.dataio.batch import PaddedBatch

    items, total = [], 0.0
    for i in range(len(run.train_set)):
        item = run.train_set[i]
        duration = item["sig"].numel() / 16000
        if items and total + duration > seconds:
            break
        items.append(item)
        total += duration
    return PaddedBatch(items), total


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_all(args, folder: Path) -> dict:
    import torch

    torch.manual_seed(0)
    runs = {name: _build(name, args, folder) for name in args.configs}
    batch, audio_seconds = _batch(next(iter(runs.values())), args.batch_seconds)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for step in range(args.steps + 1):
        for name, run in runs.items():
            _sync(args.device)
            started = time.perf_counter()
            run.brain.fit_batch(batch)
            _sync(args.device)
            if step > 0:  # step 0 is the warm-up
                times[name].append(time.perf_counter() - started)
    base = statistics.median(times["ctc_only"]) if "ctc_only" in times else None
    return {
        "batch_audio_seconds": round(audio_seconds, 2),
        "batch_utterances": len(batch.id),
        "results": {
            name: {"median_step_s": round(statistics.median(t), 4), "min_step_s": round(min(t), 4),
                   "ratio_to_ctc_only": round(statistics.median(t) / base, 3) if base else None}
            for name, t in times.items()
        },
    }


def peak_memory_one(args, folder: Path) -> dict:
    import torch

    run = _build(args.configs[0], args, folder)
    batch, _ = _batch(run, args.batch_seconds)
    run.brain.fit_batch(batch)  # warm-up: optimizer state, SSL target cache
    gc.collect()
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the peak RSS (VmHWM) to the current RSS
        base = _status_kb("VmRSS") * 1024
    for _ in range(2):
        run.brain.fit_batch(batch)
    if args.device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated()
        return {"step_peak_mb": round((peak - base) / 2**20, 1), "peak_cuda_mb": round(peak / 2**20, 1)}
    peak = _status_kb("VmHWM") * 1024
    return {"step_peak_mb": round((peak - base) / 2**20, 1), "peak_rss_mb": round(peak / 2**20, 1)}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_memory(args) -> dict:
    memory = {}
    for name in args.configs:
        command = [sys.executable, __file__, "--labeled", args.labeled, "--preset", args.preset, "--device", args.device,
                   "--precision", args.precision, "--batch-seconds", str(args.batch_seconds), "--only", name, "--memory-child"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        memory[name] = json.loads(lines[-1]) if lines else {"error": result.stderr[-500:]}
    return memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labeled", default="", help="labeled manifest (default: a generated tone corpus)")
    parser.add_argument("--preset", default="cpu-small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--batch-seconds", type=float, default=40.0)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration (after one warm-up)")
    parser.add_argument("--only", action="append", default=[], help="run only these configurations")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-configuration memory subprocesses")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help="write the JSON results here")
    args = parser.parse_args()
    args.configs = args.only or list(CONFIGS)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not args.labeled:
            args.labeled = _tone_corpus(folder)
        if args.memory_child:
            print(json.dumps(peak_memory_one(args, folder)))
            return
        import torch

        report = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "preset": args.preset, "device": args.device,
                  "precision": args.precision, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                  "platform": platform.platform(), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                  "load_average_before": os.getloadavg()}
        report.update(time_all(args, folder))
        report["load_average_after"] = os.getloadavg()
        if not args.no_memory:
            report["memory"] = measure_memory(args)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
