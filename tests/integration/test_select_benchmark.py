"""Confidence -> agreement -> selection -> benchmark on simulated CTC posteriors (no audio, no training).

Two simulated teachers decode the same utterances with pyctcdecode (no LM): frames of "hard"
utterances are confusable, so the teachers make errors there, with low confidence and disagreeing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from selftrain.confidence import score_hypothesis
from selftrain.data.manifest import write_speechbrain_csv
from selftrain.decode.backends import PyctcdecodeBackend
from selftrain.decode.config import DecoderConfig
from selftrain.record import Utterance

pytestmark = pytest.mark.integration

LABELS = ["", " ", *"abcdefghijklmnopqrstuvwxyz"]
WORDS = ["cat", "dog", "sat", "mat", "log", "run", "sun", "fun", "bat", "hat", "red", "bed", "ten", "pen", "hen", "map", "cap", "top", "hop", "pot"]


def _posteriors(text: str, difficulty: float, rng: np.random.Generator) -> np.ndarray:
    ids = [0]
    for char in text:
        ids += [LABELS.index(char)] * 2 + [0]
    rows = np.full((len(ids), len(LABELS)), 0.05 / (len(LABELS) - 1))
    for t, true in enumerate(ids):
        if true > 1 and rng.uniform() < difficulty:  # a confusable letter frame
            other = int(rng.integers(2, len(LABELS)))
            rows[t, true], rows[t, other] = rng.uniform(0.2, 0.6), rng.uniform(0.2, 0.6)
        else:
            rows[t, true] = 0.95
    rows /= rows.sum(axis=1, keepdims=True)
    return np.log(rows)


def _corpus(tmp_path: Path, n: int = 60) -> tuple[list[Path], Path]:
    rng = np.random.default_rng(0)
    backend = PyctcdecodeBackend(LABELS, DecoderConfig(beam_width=16, nbest=5, skip_blank_frames=False))
    refs = [" ".join(rng.choice(WORDS, size=int(rng.integers(4, 8)))) for _ in range(n)]
    difficulty = rng.uniform(0.0, 0.35, size=n) * (rng.uniform(size=n) < 0.6)
    files = []
    for teacher in ("t1", "t2"):
        path = tmp_path / f"{teacher}.jsonl"
        with open(path, "w", encoding="utf-8") as handle:
            for i, ref in enumerate(refs):
                log_probs = _posteriors(ref, difficulty[i], rng)
                hyp = backend.decode(log_probs)
                hyp.teacher = teacher
                score_hypothesis(log_probs, hyp)
                utt = Utterance(f"u{i:03d}", str(tmp_path / f"u{i}.wav"), 0.3 + len(ref) / 14, hypotheses=[hyp])
                handle.write(json.dumps(utt.to_dict()) + "\n")
        files.append(path)
    reference = tmp_path / "ref.csv"
    write_speechbrain_csv([Utterance(f"u{i:03d}", str(tmp_path / f"u{i}.wav"), 0.3 + len(r) / 14, reference=r)
                           for i, r in enumerate(refs)], reference)
    return files, reference


def test_benchmark_on_simulated_teachers(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import pseudo_label_quality as bench

    files, reference = _corpus(tmp_path)
    code = bench.main(["--hyps", str(files[0]), "--hyps", str(files[1]), "--reference", str(reference),
                       "--out-dir", str(tmp_path / "results")])
    assert code == 0
    result = json.loads((tmp_path / "results" / "pseudo_label_quality.json").read_text())
    rows = result["wer_at_kept_fraction"]
    assert result["unfiltered_wer"] > 0.05
    combinations = [k for k in rows if k.startswith("combination:")]
    assert len(combinations) == 2
    for name in ("entropy_tsallis_exp", "max_prob", "nbest_posterior", "agreement", "policy", *combinations):
        assert rows[name]["0.6"] < 0.5 * rows[name]["1"], name
    assert rows["oracle"]["0.4"] == 0.0
    assert result["word_detection"]["entropy_tsallis_exp"]["auroc"] > 0.8
    assert result["word_detection"]["word_posterior"]["auroc"] > 0.6
    assert result["word_detection"]["combined (2-fold)"]["auroc"] > 0.8
    assert rows["combined:word-mean (2-fold)"]["0.6"] < 0.5 * rows["combined:word-mean (2-fold)"]["1"]
    assert (tmp_path / "results" / "pseudo_label_quality.md").read_text().startswith("# Pseudo-label quality")


def test_select_cli_on_simulated_teachers(tmp_path):
    from click.testing import CliRunner

    from selftrain.cli import main

    files, reference = _corpus(tmp_path, n=30)
    out = tmp_path / "sel"
    result = CliRunner().invoke(main, ["select", "--hyps", str(files[0]), "--hyps", str(files[1]), "--manifest",
                                       str(reference), "--out", str(out), "--keep-fraction", "0.6"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kept"] == 18
    quality = summary["pseudo_label_quality"]
    assert quality["kept"]["wer"] < quality["all"]["wer"]
