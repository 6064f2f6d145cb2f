"""Continuous pseudo-labeling inside one run on a tiny tone corpus: labels, cache, guard, audit, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from selftrain.errors import ConfigError
from selftrain.train import load_train_config, train
from tests.tone_corpus import tiny_config, tone_clip, tone_manifest

# slow: the tests train models (all but the configuration-error tests, kept here beside them).
pytestmark = pytest.mark.slow

TEXTS = ["ab", "ba", "aa", "ab ba", "ba aa", "aa ab"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    labeled = [(f"l{i}", tone_clip(root / f"l{i}.wav", t, i), t) for i, t in enumerate(TEXTS * 4)]
    dev = [(f"d{i}", tone_clip(root / f"d{i}.wav", t, 100 + i), t) for i, t in enumerate(TEXTS)]
    # the unlabeled manifest keeps its transcripts: training ignores them, the audit file shows them
    unlabeled = [(f"u{i}", tone_clip(root / f"u{i}.wav", t, 300 + i), t) for i, t in enumerate(TEXTS * 2)]
    return {"labeled": tone_manifest(root / "labeled.csv", labeled), "dev": tone_manifest(root / "dev.csv", dev),
            "unlabeled": tone_manifest(root / "unlabeled.csv", unlabeled)}


@pytest.fixture(scope="module")
def teacher(corpus, tmp_path_factory):
    """A supervised model that spells most characters (what `selftrain run` starts a continuous run from)."""
    out = tmp_path_factory.mktemp("teacher")
    values = {"out": str(out), "epochs": 40, "optim": {"lr": 1e-2, "decay_factor": 1.0}, "augment": {"specaugment": False},
              "data": {"labeled": [corpus["labeled"]], "dev": corpus["dev"], "batch_seconds": 4.0}}
    return str(train(load_train_config("tiny", overrides=values)))


def _config(corpus, out, **overrides):
    values = {"out": str(out), "epochs": 3, "optim": {"lr": 5e-3, "warmup_steps": 5},
              "data": {"labeled": [corpus["labeled"]], "unlabeled": [corpus["unlabeled"]], "dev": corpus["dev"],
                       "batch_seconds": 8.0, "mix_unlabeled": 0.3},
              "continuous": {"enabled": True, "warmup_steps": 2, "calibrate_every": 5, "audit_every": 2,
                             "audit_sample": 2, "guard_window": 4, "speaking_rate_quantile": None}}
    return tiny_config(values, **overrides)


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


@pytest.mark.parametrize("source", ["ema", "cache"])
def test_unlabeled_rows_are_labeled_filtered_and_audited(corpus, teacher, tmp_path, source):
    run = tmp_path / "run"
    # The guard is tested on its own below: here it may not go back, and the threshold keeps at least half of
    # dev, so that labels pass and every one made stays counted (how many of this tiny model's labels are
    # empty or under a strict threshold depends on the machine's floating-point kernels).
    train(_config(corpus, run, **{"continuous.source": source, "init.encoder": teacher, "init.head": True,
                                  "continuous.guard_max_short_share": 1.0, "continuous.guard_max_wer_rise": 1.0,
                                  "continuous.min_keep_fraction": 0.5}))
    continuous = _summary(run)["continuous"]
    labels = continuous["labels"]
    assert continuous["warmup_end_step"] == 2 and continuous["calibrations"] >= 2
    assert labels["made"] > 0 and labels["kept"] > 0 and continuous["guard_trips"] == 0
    assert continuous["threshold"] is not None and continuous["teacher_dev_wer"] < 1.0
    history = continuous["calibration_history"]  # one entry a calibration, the last one the current filter
    assert len(history) == continuous["calibrations"] and history[0]["step"] == continuous["warmup_end_step"]
    assert history[-1]["teacher_dev_wer"] == continuous["teacher_dev_wer"]
    assert min(h["teacher_dev_wer"] for h in history) == continuous["best_teacher_dev_wer"]
    assert sum(v for k, v in labels.items() if k == "kept" or k.startswith("dropped:")) == labels["made"] + labels.get("reused", 0)
    if source == "cache":
        assert labels.get("reused", 0) > 0 and 0 < continuous["cached_labels"] <= 12
    else:
        assert "reused" not in labels and (run / "model_ema" / "model.pt").exists()
    records = [json.loads(line) for line in (run / "continuous" / "labels.jsonl").read_text().splitlines()]
    assert records and all(r["reference"] in TEXTS and r["decision"]["reason"] for r in records)
    assert any(r["decision"]["kept"] and r["pseudo_label"] for r in records)
    assert all(r["hypotheses"][0]["teacher"] == source and "entropy_tsallis_exp" in r["hypotheses"][0]["scores"] for r in records)


def test_the_audit_reads_the_label_sample(corpus, teacher, tmp_path):
    from click.testing import CliRunner

    from selftrain.cli import main

    run = tmp_path / "run"
    train(_config(corpus, run, **{"init.encoder": teacher, "init.head": True}))
    result = CliRunner().invoke(main, ["audit", "--hyps", str(run / "continuous" / "labels.jsonl"), "--out", str(tmp_path / "audit")])
    assert result.exit_code == 0, result.output
    audit = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert audit["with_reference"] > 0
    assert any(m["name"] == "selection" for m in audit["methods"])


def test_the_guard_goes_back_then_stops_and_counts_its_trips(corpus, tmp_path):
    # every label counts as too short: each window trips, the second trip stops the run
    run = tmp_path / "run"
    train(_config(corpus, run, **{"continuous.guard_max_short_share": 0.0, "continuous.guard_max_trips": 2,
                                  "continuous.sanity.min_chars_per_second": 1000.0, "epochs": 6}))
    summary = _summary(run)
    continuous = summary["continuous"]
    assert continuous["guard_trips"] == 2 and len(continuous["trips"]) == 2
    assert "empty or too short" in continuous["trips"][0]["reason"] and continuous["stopped"]
    assert summary["epochs"] < 6  # stopped early
    assert "kept" not in continuous["labels"]  # the rate bound dropped every label


@pytest.mark.parametrize("label_settings", [{"continuous.source": "cache"},
                                            {"continuous.source": "ema", "continuous.export": "best_ema"}],
                         ids=["cache", "best_ema"])
def test_an_interrupted_continuous_run_ends_with_the_uninterrupted_weights(corpus, teacher, tmp_path, monkeypatch, label_settings):
    from selftrain.train.brain import SelftrainBrain

    settings = {**label_settings, "init.encoder": teacher, "init.head": True}
    straight_dir = train(_config(corpus, tmp_path / "straight", **settings))
    original = SelftrainBrain.on_stage_start

    def crash_in_epoch_3(self, stage, epoch=None):
        if epoch == 3:
            raise KeyboardInterrupt  # killed after epoch 2's checkpoint, labels made and cached
        return original(self, stage, epoch)

    monkeypatch.setattr(SelftrainBrain, "on_stage_start", crash_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(_config(corpus, tmp_path / "resumed", **settings))
    monkeypatch.setattr(SelftrainBrain, "on_stage_start", original)
    resumed_dir = train(_config(corpus, tmp_path / "resumed", **settings))
    straight, resumed = (torch.load(d / "model.pt", weights_only=True) for d in (straight_dir, resumed_dir))
    for name, value in straight.items():
        assert torch.equal(value, resumed[name]), name
    continuous = _summary(tmp_path / "straight")["continuous"]
    assert continuous == _summary(tmp_path / "resumed")["continuous"]
    assert continuous["labels"]["kept"] > 0
    if label_settings["continuous.source"] == "cache":
        assert continuous["labels"]["reused"] > 0  # the cache carried over
    else:  # the best snapshot carried over: exported from a calibration before the interruption or after
        assert continuous["exported"]["step"] == continuous["best_step"]
    audit = [(d / "continuous" / "labels.jsonl").read_bytes() for d in (tmp_path / "straight", tmp_path / "resumed")]
    assert audit[0] == audit[1]


def test_continuous_config_errors(corpus, tmp_path):
    with pytest.raises(ConfigError, match="source"):
        train(_config(corpus, tmp_path / "r", **{"continuous.source": "oracle"}))
    with pytest.raises(ConfigError, match="data.unlabeled"):
        train(_config(corpus, tmp_path / "r", **{"data.unlabeled": []}))
    with pytest.raises(ConfigError, match="ema_decay"):
        train(_config(corpus, tmp_path / "r", **{"ema_decay": 0.9}))


def test_a_pretrained_encoder_labels_from_its_cached_clean_states(corpus, tmp_path):
    from tests.unit.test_models_whisper import FFN, HEADS, LAYERS, WIDTH, reference_state, write_openai

    checkpoint = write_openai(tmp_path / "tiny.pt", reference_state())
    model = {"d_model": WIDTH, "num_heads": HEADS, "num_layers": LAYERS, "d_ffn": FFN, "frozen_layers": 1,
             "pretrained": str(checkpoint)}
    values = {"out": str(tmp_path / "run"), "epochs": 2, "state_cache": str(tmp_path / "cache"), "model": model,
              "data": {"labeled": [corpus["labeled"]], "unlabeled": [corpus["unlabeled"]], "dev": corpus["dev"],
                       "batch_seconds": 8.0, "mix_unlabeled": 0.3},
              "continuous": {"enabled": True, "warmup_steps": 1, "calibrate_every": 3, "speaking_rate_quantile": None,
                             "guard_max_short_share": 1.0}}
    train(load_train_config("cpu-whisper-tiny", overrides=values))
    summary = _summary(tmp_path / "run")
    assert summary["continuous"]["labels"]["made"] > 0 and summary["continuous"]["calibrations"] >= 2
    # every utterance's frozen states were computed once: the EMA teacher read the student's cache
    cache = summary["state_cache"]
    assert cache["misses"] == summary["train_utterances"] + summary["dev_utterances"]
    assert cache["hits"] > summary["continuous"]["labels"]["made"]


def test_the_warmup_can_end_at_a_dev_evaluation_under_a_wer(corpus, tmp_path):
    run = tmp_path / "run"
    # never by steps; the first dev evaluation (end of epoch 1) is under 1.01 whatever the model reads
    train(_config(corpus, run, **{"continuous.warmup_steps": 10_000, "continuous.warmup_dev_wer": 1.01,
                                  "continuous.guard_max_short_share": 1.0}))
    log = (run / "train_log.txt").read_text().splitlines()
    first_epoch_steps = int(log[0].split("steps: ")[1].split(",")[0])
    assert _summary(run)["continuous"]["warmup_end_step"] == first_epoch_steps


def test_labels_by_beam_search_with_the_lm(corpus, teacher, tmp_path):
    from selftrain.lm import LMBuildConfig, build_lm

    text = tmp_path / "lm.txt"
    text.write_text("\n".join(TEXTS * 5) + "\n")
    lm = build_lm(text, tmp_path / "lm.bin", LMBuildConfig(order=2))
    run = tmp_path / "run"
    train(_config(corpus, run, **{"init.encoder": teacher, "init.head": True, "continuous.decoder": "lm",
                                  "continuous.lm": str(tmp_path / "lm.bin"), "continuous.decode": {"beam_width": 4}}))
    assert lm is not None and _summary(run)["continuous"]["labels"]["made"] > 0
    records = [json.loads(line) for line in (run / "continuous" / "labels.jsonl").read_text().splitlines()]
    assert {r["hypotheses"][0]["decoder"] for r in records} == {"pyctcdecode"} and any(r["pseudo_label"] for r in records)
    assert all("lm_word_prob" in r["hypotheses"][0]["scores"] for r in records if r["pseudo_label"])  # the LM scored them
    with pytest.raises(ConfigError, match="continuous.lm"):
        train(_config(corpus, tmp_path / "r", **{"continuous.decoder": "lm"}))
    with pytest.raises(ConfigError, match="continuous.decode.beam"):
        train(_config(corpus, tmp_path / "r", **{"continuous.decode": {"beam": 4}}))


def test_a_rising_teacher_dev_wer_trips_the_guard_back_to_the_best_checkpoint(corpus, teacher, tmp_path, monkeypatch, caplog):
    import logging

    import selftrain.train.continuous as continuous_module

    caplog.set_level(logging.WARNING, logger="selftrain.train.continuous")
    real = continuous_module.fit_label_filter
    calls = []

    def worse_each_time(*args, **kwargs):  # the teacher's dev WER seen rising by 0.2 per calibration
        result = real(*args, **kwargs)
        calls.append(result.step)
        result.dev_wer += 0.2 * (len(calls) - 1)
        return result

    monkeypatch.setattr(continuous_module, "fit_label_filter", worse_each_time)
    run = tmp_path / "run"
    train(_config(corpus, run, **{"init.encoder": teacher, "init.head": True, "epochs": 4,
                                  "continuous.calibrate_every": 3, "continuous.guard_max_trips": 2}))
    continuous = _summary(run)["continuous"]
    assert all(t["reason"].startswith("teacher dev WER") for t in continuous["trips"])
    assert continuous["guard_trips"] == 2 and "2 guard trips" in continuous["stopped"]
    # the first trip went back to a checkpoint and recalibrated at the next step, which tripped again
    assert caplog.text.count("weights restored from CKPT") == 1
    assert continuous["trips"][1]["step"] > continuous["trips"][0]["step"]


def test_export_best_ema_writes_the_labeling_teacher_at_its_best_calibration(corpus, teacher, tmp_path, monkeypatch):
    import selftrain.train.continuous as continuous_module

    real = continuous_module.fit_label_filter
    seen = []

    def best_at_the_second(*args, **kwargs):  # dev WERs seen: 0.5, 0.3 (the best), then 0.4, 0.4, ...
        result = real(*args, **kwargs)
        seen.append(result.step)
        result.dev_wer = 0.5 if len(seen) == 1 else 0.3 if len(seen) == 2 else 0.4
        return result

    snapshots = {}
    original_take = continuous_module.ContinuousLabeler._new_best

    def remember(self, brain, step, wer):
        original_take(self, brain, step, wer)
        snapshots[step] = {k: v.clone() for k, v in self.ema.shadow.state_dict().items()}

    monkeypatch.setattr(continuous_module, "fit_label_filter", best_at_the_second)
    monkeypatch.setattr(continuous_module.ContinuousLabeler, "_new_best", remember)
    run = tmp_path / "run"
    train(_config(corpus, run, **{"init.encoder": teacher, "init.head": True, "epochs": 6,
                                  "continuous.calibrate_every": 3, "continuous.export": "best_ema",
                                  "continuous.patience": 2}))
    summary = _summary(run)
    continuous = summary["continuous"]
    best_step = seen[1]
    assert continuous["best_step"] == best_step and continuous["best_teacher_dev_wer"] == 0.3
    assert continuous["exported"] == {"weights": "best_ema", "step": best_step, "teacher_dev_wer": 0.3}
    # two calibrations without a new best after it stop the run (patience 2), not the guard
    assert continuous["calibrations"] == 4 and continuous["guard_trips"] == 0
    assert "not improved" in continuous["stopped"] and summary["epochs"] < 6
    exported = torch.load(run / "model" / "model.pt", weights_only=True)
    for name, value in snapshots[best_step].items():
        assert torch.equal(exported[name], value.to(exported[name].dtype)), name
    assert json.loads((run / "model" / "model.json").read_text()).get("weights") == "best_ema"


def test_export_best_ema_needs_the_ema_source(corpus, tmp_path):
    with pytest.raises(ConfigError, match="best_ema"):
        train(_config(corpus, tmp_path / "r", **{"continuous.source": "cache", "continuous.export": "best_ema"}))
    with pytest.raises(ConfigError, match="continuous.export"):
        train(_config(corpus, tmp_path / "r", **{"continuous.export": "last"}))


def test_a_plateau_restarts_from_the_best_snapshot_before_it_stops_the_run(corpus, teacher, tmp_path, monkeypatch):
    import selftrain.train.continuous as continuous_module

    real = continuous_module.fit_label_filter
    steps = []

    def best_at_the_second(*args, **kwargs):  # dev WERs seen: 0.5, 0.3 (the best), then 0.4 for ever
        result = real(*args, **kwargs)
        steps.append(result.step)
        result.dev_wer = 0.5 if len(steps) == 1 else 0.3 if len(steps) == 2 else 0.4
        return result

    restored = []
    original_restart = continuous_module.ContinuousLabeler._restart

    def check_restart(self, brain, step, reason):
        original_restart(self, brain, step, reason)
        best = self.best.model.state_dict()
        restored.append(all(torch.equal(v, best[k]) for k, v in brain.model.state_dict().items())
                        and all(torch.equal(v, best[k]) for k, v in self.ema.shadow.state_dict().items()))

    monkeypatch.setattr(continuous_module, "fit_label_filter", best_at_the_second)
    monkeypatch.setattr(continuous_module.ContinuousLabeler, "_restart", check_restart)
    run = tmp_path / "run"
    train(_config(corpus, run, **{"init.encoder": teacher, "init.head": True, "epochs": 10,
                                  "continuous.calibrate_every": 3, "continuous.export": "best_ema",
                                  "continuous.patience": 2, "continuous.restarts": 1}))
    continuous = _summary(run)["continuous"]
    # calibrations 3-4 make the first plateau (a restart back to calibration 2's snapshot), 5-6 the second (the stop)
    assert continuous["restarts"] == [{"step": steps[3], "to_step": steps[1]}] and restored == [True]
    assert continuous["calibrations"] == 6 and "not improved" in continuous["stopped"]
    assert continuous["exported"]["step"] == steps[1]
    with pytest.raises(ConfigError, match="restarts"):
        train(_config(corpus, tmp_path / "r", **{"continuous.restarts": 1}))
