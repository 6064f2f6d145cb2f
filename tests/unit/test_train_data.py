"""Training data: row checks with skip reasons, pseudo-label weights, the mixed duration batches."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from selftrain.data.batching import MixedDurationBatchSampler, Pool, duration_batches
from selftrain.errors import ConfigError, ManifestError
from selftrain.train.config import DataConfig
from selftrain.train.data import (
    KIND_LABELED,
    KIND_PSEUDO,
    KIND_UNLABELED,
    make_dataset,
    make_train_sampler,
    prepare_data,
)


def _wav(path: Path, seconds: float, value: float | None = None) -> str:
    rng = np.random.default_rng(len(path.name))
    data = rng.standard_normal(int(seconds * 16000)).astype(np.float32) * 0.1
    if value is not None:
        data[:] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, 16000)
    return str(path)


def _csv(path: Path, rows: list[dict]) -> str:
    columns = ["ID", "duration", "wav", "spk_id", "wrd"] + sorted({k for r in rows for k in r} - {"ID", "duration", "wav", "spk_id", "wrd"})
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for r in rows:
            writer.writerow({"duration": 1.0, "spk_id": "s", "wrd": "", **r})
    return str(path)


@pytest.fixture
def corpus(tmp_path):
    w = tmp_path / "wav"
    labeled = _csv(tmp_path / "labeled.csv", [
        {"ID": "ok1", "wav": _wav(w / "ok1.wav", 1.0), "wrd": "Ab, BA!"},
        {"ID": "ok2", "wav": _wav(w / "ok2.wav", 0.8), "wrd": "ab"},
        {"ID": "missing", "wav": str(w / "nope.wav"), "wrd": "ab"},
        {"ID": "empty_text", "wav": _wav(w / "e.wav", 1.0), "wrd": "!!"},
        {"ID": "unlabeled_row", "wav": _wav(w / "u0.wav", 1.0), "wrd": ""},
        {"ID": "long_text", "wav": _wav(w / "lt.wav", 0.3), "wrd": "abababab abababab"},
        {"ID": "too_long", "wav": _wav(w / "tl.wav", 3.0), "wrd": "ab"},
    ])
    pseudo = _csv(tmp_path / "pseudo.csv", [
        {"ID": "p1", "wav": _wav(w / "p1.wav", 1.0), "wrd": "ba", "confidence": "0.8"},
        {"ID": "p2", "wav": _wav(w / "p2.wav", 1.0), "wrd": "ba", "confidence": "0.1"},
        {"ID": "p3", "wav": _wav(w / "p3.wav", 1.0), "wrd": "abz", "confidence": "0.9"},
    ])
    unlabeled = _csv(tmp_path / "unlabeled.csv", [{"ID": f"u{i}", "wav": _wav(w / f"u{i}.wav", 1.0)} for i in range(1, 4)])
    return DataConfig(labeled=[labeled], pseudo=[pseudo], unlabeled=[unlabeled], max_duration=2.0, min_weight=0.2,
                      weight_column="confidence")


def test_rows_are_checked_and_skipped_with_reasons(corpus):
    data = prepare_data(corpus, 16000, 0.04)
    by_id = {r.id: r for r in data.train}
    assert set(by_id) == {"ok1", "ok2", "p1", "u1", "u2", "u3"}
    assert by_id["ok1"].text == "ab ba" and by_id["ok1"].kind == KIND_LABELED
    assert by_id["p1"].kind == KIND_PSEUDO and by_id["p1"].weight == pytest.approx(0.8)
    assert by_id["u1"].kind == KIND_UNLABELED and by_id["u1"].tokens == []
    assert by_id["ok1"].duration == pytest.approx(1.0)
    assert data.skipped == {
        "labeled:missing": 1, "labeled:empty_target": 2, "labeled:target_too_long": 1, "labeled:too_long": 1,
        "pseudo:low_weight": 1, "pseudo:bad_text": 1,
    }
    assert {r["id"] for r in data.skipped_rows} >= {"missing", "p2", "p3"}
    assert data.tokenizer.ctc_labels() == ["", " ", "a", "b"]


def test_pseudo_labels_weigh_one_unless_a_weight_column_is_named(corpus):
    from dataclasses import replace

    data = prepare_data(replace(corpus, weight_column=""), 16000, 0.04)
    weights = {r.id: r.weight for r in data.train if r.kind == KIND_PSEUDO}
    assert weights == {"p1": 1.0, "p2": 1.0}  # p2 is no longer dropped by min_weight; p3 has a bad character


def test_bad_weight_and_no_labels_are_errors(corpus, tmp_path):
    bad = _csv(tmp_path / "bad.csv", [{"ID": "x", "wav": _wav(tmp_path / "x.wav", 1.0), "wrd": "ab", "confidence": "high"}])
    with pytest.raises(ManifestError, match="not a number"):
        prepare_data(DataConfig(labeled=corpus.labeled, pseudo=[bad], weight_column="confidence"), 16000, 0.04)
    with pytest.raises(ConfigError, match="at least one labeled"):
        prepare_data(DataConfig(unlabeled=corpus.unlabeled), 16000, 0.04)


def test_dataset_items_and_padding(corpus):
    data = prepare_data(corpus, 16000, 0.04)
    dataset = make_dataset(data.train, 16000)
    items = {dataset[i]["id"]: dataset[i] for i in range(len(dataset))}
    assert items["ok1"]["num_tokens"] == 5 and items["ok1"]["tokens"].tolist() == data.tokenizer.encode("ab ba")
    assert items["u1"]["num_tokens"] == 0 and items["u1"]["kind_id"] == KIND_UNLABELED
    assert items["p1"]["weight"] == pytest.approx(0.8)


def test_duration_batches_respect_the_budget():
    rng = random.Random(0)
    durations = [rng.uniform(1, 10) for _ in range(200)]
    batches = duration_batches(list(range(200)), durations, 30.0, 8, rng)
    assert sorted(i for b in batches for i in b) == list(range(200))
    for b in batches:
        assert len(b) <= 8
        assert len(b) == 1 or max(durations[i] for i in b) * len(b) <= 30.0


def test_mixed_batches_follow_the_shares_and_are_deterministic_per_epoch():
    pools = [
        Pool("labeled", list(range(0, 100)), [2.0] * 100, 0.5),
        Pool("pseudo", list(range(100, 120)), [2.0] * 20, 0.25),
        Pool("unlabeled", list(range(120, 400)), [2.0] * 280, 0.25),
    ]
    sampler = MixedDurationBatchSampler(pools, batch_seconds=16.0, max_utterances=64, seed=1)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b if i < 100) == list(range(100))  # one pass over labeled
    for b in batches:
        kinds = [0 if i < 100 else 1 if i < 120 else 2 for i in b]
        assert kinds.count(0) == 4 and kinds.count(1) == 2 and kinds.count(2) == 2
    assert list(sampler) == batches and len(sampler) == len(batches)
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_train_sampler_needs_a_labeled_share(corpus):
    data = prepare_data(corpus, 16000, 0.04)
    corpus.mix_labeled = corpus.mix_pseudo = 0.0
    with pytest.raises(ConfigError, match="no share"):
        make_train_sampler(data.train, corpus, 0)


def test_pseudo_rows_with_runs_train_their_runs_only(corpus, tmp_path):
    from dataclasses import replace

    w = tmp_path / "wav"
    runs = _csv(tmp_path / "runs.csv", [
        # 2 s at 0.04 s per frame: runs of 0.5 s and 0.4 s; the 0.02 s one is too short for its words
        {"ID": "r1", "wav": _wav(w / "r1.wav", 2.0), "wrd": "ab ba", "confidence": "0.9",
         "runs": '[[0.0, 0.5, "Ab"], [1.2, 1.6, "ba"], [1.9, 1.92, "abab"]]'},
        {"ID": "r2", "wav": _wav(w / "r2.wav", 1.0), "wrd": "ab", "runs": "[[0.5, 0.2, \"ab\"]]"},
        {"ID": "r3", "wav": _wav(w / "r3.wav", 1.0), "wrd": "ab", "runs": "not json"},
    ])
    data = prepare_data(replace(corpus, pseudo=[runs], max_duration=3.0), 16000, 0.04)
    row = next(r for r in data.train if r.id == "r1")
    assert row.kind == KIND_PSEUDO and row.text == "ab ba" and row.weight == pytest.approx(0.9)
    # a run that borders other words ends in a word separator there: "ab " from the start, " ba " inside
    assert row.tokens == data.tokenizer.encode("ab ") + data.tokenizer.encode(" ba ")
    assert row.spans == [(0.0, 0.25, 3), (0.6, 0.8, 4)]
    assert data.skipped["pseudo:run_too_short"] == 1 and data.skipped["pseudo:bad_runs"] == 2
    assert {"r2", "r3"} & {r.id for r in data.train} == set()

    item = next(i for i in (make_dataset(data.train, 16000)[k] for k in range(len(data.train))) if i["id"] == "r1")
    assert item["spans"] == [(0.0, 0.25, 3), (0.6, 0.8, 4)] and item["num_tokens"] == 7
