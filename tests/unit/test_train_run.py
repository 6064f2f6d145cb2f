"""End-to-end training on a tiny tone corpus: run folder, export, resume, SSL + pseudo-labels, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from selftrain.errors import ConfigError
from selftrain.models import load_acoustic_model
from selftrain.train import train
from tests.tone_corpus import tiny_config, tone_clip, tone_manifest

# slow: the tests train models (all but the configuration-error test, kept here beside them).
pytestmark = pytest.mark.slow

WORDS = {"ab": (300.0, 600.0), "ba": (600.0, 300.0), "aa": (300.0, 300.0)}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    texts = ["ab", "ba", "aa", "ab ba", "ba aa", "aa ab"]
    labeled = [(f"l{i}", tone_clip(root / f"l{i}.wav", t, i), t) for i, t in enumerate(texts * 2)]
    dev = [(f"d{i}", tone_clip(root / f"d{i}.wav", t, 100 + i), t) for i, t in enumerate(texts[:3])]
    pseudo = [(f"p{i}", tone_clip(root / f"p{i}.wav", t, 200 + i), t) for i, t in enumerate(texts)]
    unlabeled = [(f"u{i}", tone_clip(root / f"u{i}.wav", t, 300 + i), "") for i, t in enumerate(texts)]
    return {
        "labeled": tone_manifest(root / "labeled.csv", labeled),
        "dev": tone_manifest(root / "dev.csv", dev),
        "pseudo": tone_manifest(root / "pseudo.csv", pseudo, {"confidence": "0.7"}),
        "unlabeled": tone_manifest(root / "unlabeled.csv", unlabeled),
    }


def _config(corpus, out, **overrides):
    values = {"out": str(out), "epochs": 2, "data": {"labeled": [corpus["labeled"]], "dev": corpus["dev"], "batch_seconds": 8.0}}
    return tiny_config(values, **overrides)


def test_training_writes_a_complete_run_folder_and_a_loadable_model(corpus, tmp_path):
    model_dir = train(_config(corpus, tmp_path / "run"))
    run = tmp_path / "run"
    assert model_dir == run / "model"
    for name in ("hyperparams.yaml", "train_log.txt", "env.log", "skipped.jsonl", "summary.json", "tensorboard"):
        assert (run / name).exists(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["optimizer_steps"] > 0
    assert summary["dev_cer"] >= 0.0 and summary["dev_wer"] is not None
    assert "epoch: 2" in (run / "train_log.txt").read_text()
    model = load_acoustic_model(model_dir)
    log_probs, frames = model.log_probs(torch.zeros(1, 16000), torch.ones(1))
    assert log_probs.shape[-1] == model.tokenizer.vocab_size == 4  # blank, space, a, b and int(frames[0]) == 26


def test_resume_continues_the_epoch_count_and_lr_schedule(corpus, tmp_path):
    out = tmp_path / "run"
    train(_config(corpus, out, epochs=1))
    first = json.loads((out / "summary.json").read_text())
    train(_config(corpus, out, epochs=2))
    second = json.loads((out / "summary.json").read_text())
    log = (out / "train_log.txt").read_text().splitlines()
    assert [line.split(",")[0] for line in log] == ["epoch: 1", "epoch: 2"]  # epoch 1 was not redone
    assert second["optimizer_steps"] == 2 * first["optimizer_steps"]
    latest = sorted((out / "save").glob("CKPT*/scheduler.ckpt"))[-1]  # folders are named by time
    sched = torch.load(latest, weights_only=True)
    assert sched["current_step"] == second["optimizer_steps"]


def test_ssl_pseudo_unlabeled_and_ema_run_together(corpus, tmp_path):
    config = _config(corpus, tmp_path / "run", epochs=1, **{
        "data.pseudo": [corpus["pseudo"]], "data.unlabeled": [corpus["unlabeled"]],
        "ssl.objectives": ["best_rq", "reconstruction", "contrastive"], "ssl.best_rq_codebook": 32,
        "combine.strategy": "gradnorm", "ema_decay": 0.9, "augment.noise_prob": 0.5, "augment.speed_perturb": True,
    })
    train(config)
    log = (tmp_path / "run" / "train_log.txt").read_text()
    for part in ("ssl_best_rq", "ssl_reconstruction", "ssl_contrastive", "w_ssl"):
        assert part in log
    assert (tmp_path / "run" / "model_ema" / "model.pt").exists()
    assert list((tmp_path / "run" / "save").glob("CKPT*/combiner.ckpt"))  # GradNorm weights are checkpointed


def test_ssl_targets_are_cached_across_epochs(corpus, tmp_path):
    train(_config(corpus, tmp_path / "run", epochs=2, **{"ssl.objectives": ["best_rq"], "ssl.best_rq_codebook": 32}))
    cache = json.loads((tmp_path / "run" / "summary.json").read_text())["ssl_cache"]
    assert cache["utterances"] == 12 and cache["hits"] > 0


def _trained_unlabeled(run: Path) -> list[str]:
    import yaml

    return yaml.safe_load((run / "hyperparams.yaml").read_text())["data"]["unlabeled"]


def test_distillation_from_a_teacher_model_also_learns_from_unlabeled_audio(corpus, tmp_path):
    teacher = train(_config(corpus, tmp_path / "teacher", epochs=1, **{"data.unlabeled": [corpus["unlabeled"]]}))
    assert _trained_unlabeled(tmp_path / "teacher") == []  # neither SSL nor distillation would use it
    train(_config(corpus, tmp_path / "student", epochs=1, **{"distill.teacher_model": str(teacher), "distill.weight": 0.5,
                                                             "data.unlabeled": [corpus["unlabeled"]], "data.mix_unlabeled": 0.5}))
    assert (tmp_path / "student" / "model" / "model.pt").exists()
    assert _trained_unlabeled(tmp_path / "student") == [corpus["unlabeled"]]


def test_config_errors_before_any_work(corpus, tmp_path):
    with pytest.raises(ConfigError, match="out"):
        train(_config(corpus, ""))
    with pytest.raises(ConfigError, match="precision"):
        train(_config(corpus, tmp_path / "r", precision="fp8"))
    with pytest.raises(ConfigError, match="not enabled"):
        train(_config(corpus, tmp_path / "r", **{"ssl.weights": {"best_rq": 1.0}}))
    with pytest.raises(ConfigError, match="teacher_model"):
        train(_config(corpus, tmp_path / "r", **{"distill.weight": 1.0}))
    with pytest.raises(ConfigError, match="dev_lm"):
        train(_config(corpus, tmp_path / "r", checkpoint_metric="lm_wer"))


def test_checkpoints_can_be_chosen_on_lm_decoded_dev_wer(corpus, tmp_path):
    import yaml

    from selftrain.lm import LMBuildConfig, build_lm

    text = tmp_path / "lm.txt"
    text.write_text("\n".join(["ab ba", "ba aa", "aa ab", "ab", "ba", "aa"] * 5) + "\n", encoding="utf-8")
    lm = build_lm(text, tmp_path / "lm.arpa", LMBuildConfig(order=2)).path
    train(_config(corpus, tmp_path / "run", checkpoint_metric="lm_wer", dev_lm=str(lm), keep_checkpoints=3))
    metas = [yaml.safe_load(p.read_text()) for p in (tmp_path / "run").rglob("CKPT.yaml")]
    assert len(metas) == 2  # one per evaluated epoch
    for meta in metas:
        assert meta["LM_WER"] >= 0.0 and meta["score"] == meta["LM_WER"]
    assert "LM_WER" in (tmp_path / "run" / "train_log.txt").read_text()


def _state(model_dir: Path) -> dict:
    return torch.load(model_dir / "model.pt", weights_only=True)


def test_an_interrupted_run_ends_where_an_uninterrupted_one_does(corpus, tmp_path, monkeypatch):
    from selftrain.train.brain import SelftrainBrain

    settings = {"epochs": 3, "augment.noise_prob": 0.5}
    straight = _state(train(_config(corpus, tmp_path / "straight", **settings)))
    original = SelftrainBrain.on_stage_start

    def crash_in_epoch_2(self, stage, epoch=None):
        if epoch == 2:
            raise KeyboardInterrupt  # killed after epoch 1's checkpoint
        return original(self, stage, epoch)

    monkeypatch.setattr(SelftrainBrain, "on_stage_start", crash_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(_config(corpus, tmp_path / "resumed", **settings))
    monkeypatch.setattr(SelftrainBrain, "on_stage_start", original)
    resumed = _state(train(_config(corpus, tmp_path / "resumed", **settings)))
    assert straight.keys() == resumed.keys()
    for name, value in straight.items():
        assert torch.equal(value, resumed[name]), name


def test_a_decided_stop_survives_an_interruption(corpus, tmp_path, monkeypatch):
    import selftrain.train.run as run_module

    one_epoch = json.loads((Path(train(_config(corpus, tmp_path / "probe", epochs=1))).parent / "summary.json").read_text())
    settings = {"epochs": 3, "max_steps": one_epoch["optimizer_steps"]}  # stops after epoch 1
    original = run_module.finish_run

    def killed_while_exporting(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "finish_run", killed_while_exporting)
    with pytest.raises(KeyboardInterrupt):
        train(_config(corpus, tmp_path / "run", **settings))
    monkeypatch.setattr(run_module, "finish_run", original)
    train(_config(corpus, tmp_path / "run", **settings))
    log = (tmp_path / "run" / "train_log.txt").read_text().splitlines()
    assert [line.split(",")[0] for line in log] == ["epoch: 1"]


def test_pseudo_labels_that_train_their_runs_in_context(corpus, tmp_path, monkeypatch):
    from selftrain.train import brain

    spans_seen = []
    real = brain.runs_ctc_loss

    def spy(log_probs, frames, tokens, num_tokens, weights, spans):
        spans_seen.extend(s for s in spans if s)
        return real(log_probs, frames, tokens, num_tokens, weights, spans)

    monkeypatch.setattr(brain, "runs_ctc_loss", spy)
    # "ab ba" clips: 0.1 s silence, then 0.2 s per character; the run covers "ab" only, as if "ba" were doubtful
    rows = [(f"r{i}", tone_clip(tmp_path / f"r{i}.wav", "ab ba", 400 + i), "ab") for i in range(4)]
    runs = tone_manifest(tmp_path / "runs.csv", rows, {"runs": json.dumps([[0.0, 0.55, "ab"]])})
    train(_config(corpus, tmp_path / "run", epochs=1, **{"data.pseudo": [runs], "data.mix_pseudo": 0.5}))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["optimizer_steps"] > 0 and summary["skipped"] == {}
    assert summary["rows_read"]["pseudo"] == 4 and summary["train_utterances"] == 16
    # each batch hands the loss the run as fractions of the 1.2 s clip, with its tokens "ab "
    assert spans_seen and all([list(run) for run in s] == [[0.0, pytest.approx(0.55 / 1.2), 3]] for s in spans_seen)
