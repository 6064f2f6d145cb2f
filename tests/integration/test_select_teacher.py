"""A real (tiny, untrained) teacher's posteriors through confidence, selection and the benchmark sweep."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from selftrain.cli import main
from selftrain.confidence import score_hypothesis
from selftrain.data.audio import load_audio
from selftrain.data.manifest import read_manifest, write_speechbrain_csv
from selftrain.decode.backends import GreedyBackend
from selftrain.record import Utterance
from tests.conftest import write_tone

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # slow: trains the teacher whose posteriors are selected

TEXTS = ["the cat sat", "a dog ran", "go home now", "it is fine", "red hat", "ten pens"]


def _teacher_hyps(tmp_path: Path) -> tuple[Path, Path, Path]:
    from selftrain.models import load_acoustic_model
    from selftrain.train import load_train_config, train

    utts = [Utterance(f"u{i}", str(write_tone(tmp_path / f"w{i}.wav", seconds=1.0, freq=200 + 40 * i)), 1.0,
                      reference=t) for i, t in enumerate(TEXTS)]
    manifest = tmp_path / "data.csv"
    write_speechbrain_csv(utts, manifest)
    cfg = load_train_config("tiny", overrides={"out": str(tmp_path / "run"), "epochs": 1, "max_steps": 2,
                                               "data": {"labeled": [str(manifest)], "dev": ""}})
    model_dir = train(cfg)
    model = load_acoustic_model(model_dir, device="cpu")
    backend = GreedyBackend(model.tokenizer.ctc_labels())
    hyps = tmp_path / "hyps.jsonl"
    with open(hyps, "w", encoding="utf-8") as handle:
        for utt in read_manifest(manifest):
            with torch.inference_mode():
                log_probs, frames = model.log_probs(load_audio(utt.wav)[None], torch.ones(1))
            posteriors = log_probs[0, : int(frames[0])].float().numpy()
            hyp = backend.decode(posteriors)
            hyp.teacher = "tiny"
            score_hypothesis(posteriors, hyp)
            assert all(0.0 <= v <= 1.0 for v in hyp.scores.values())
            utt.hypotheses = [hyp]
            handle.write(json.dumps(utt.to_dict()) + "\n")
    return Path(model_dir), manifest, hyps


def test_real_posteriors_select_and_benchmark_sweep(tmp_path):
    model_dir, manifest, hyps = _teacher_hyps(tmp_path)
    out = tmp_path / "sel"
    result = CliRunner().invoke(main, ["select", "--hyps", str(hyps), "--out", str(out), "--keep-fraction", "0.5",
                                       "--min-cps", "0", "--max-cps", "1000", "--max-repeat", "1000"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["utterances"] == 6
    assert summary["kept"] == sum(1 for line in (out / "selected.csv").read_text().splitlines()[1:])
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import pseudo_label_quality as bench

    assert bench.main(["--hyps", str(hyps), "--reference", str(manifest), "--model", str(model_dir),
                       "--out-dir", str(tmp_path / "res")]) == 0
    variants = json.loads((tmp_path / "res" / "pseudo_label_quality.json").read_text())["confidence_variants"]
    assert len(variants) == 2 * 3 * 3
    assert all("wer_at_60" in m for v in variants.values() for m in v.values())
