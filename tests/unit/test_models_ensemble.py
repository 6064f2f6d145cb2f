"""Teacher ensembles: posteriors averaged over model folders, and the experiment setting that uses them."""

import json
import math

import pytest
import torch

from selftrain.data.tokenizer import CharTokenizer
from selftrain.errors import CheckpointError, ConfigError
from selftrain.generation import load_experiment_config
from selftrain.generation.workdir import Workdir, experiment_hash
from selftrain.models import EnsembleModel, InferenceModel, export_model, load_ensemble
from selftrain.models.acoustic import build_model
from selftrain.models.config import ModelConfig

SMALL = {"d_model": 32, "num_layers": 2, "lstm_hidden": 16, "d_ffn": 64, "num_heads": 2, "conv_kernel": 3, "subsample_channels": 4}


class Fixed:
    """An acoustic model that returns the same posteriors whatever it hears."""

    def __init__(self, probs, labels=("", "a", "b"), frame_shift=0.04, frames=None):
        self.probs = torch.tensor(probs, dtype=torch.float32)
        self.tokenizer = CharTokenizer.from_texts(["".join(labels[1:])])
        self.sample_rate = 16000
        self.frame_shift_seconds = frame_shift
        self.frames = frames
        self.training = False

    def log_probs(self, wavs, wav_lens):
        batch = wavs.shape[0]
        frames = torch.full((batch,), self.probs.shape[0] if self.frames is None else self.frames)
        return self.probs.log().expand(batch, *self.probs.shape).clone(), frames

    def train(self, mode=True):
        self.training = mode
        return self


def _export(folder, seed, labels="abc de"):
    torch.manual_seed(seed)
    tok = CharTokenizer.from_texts([labels])
    export_model(build_model(ModelConfig.from_dict(SMALL), tok.vocab_size).eval(), tok, folder)
    return folder


def test_ensemble_averages_the_members_probabilities():
    a = Fixed([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]])
    b = Fixed([[0.4, 0.5, 0.1], [0.1, 0.2, 0.7]])
    ensemble = EnsembleModel([a, b])
    log_probs, frames = ensemble.log_probs(torch.zeros(2, 100), torch.ones(2))
    expected = torch.tensor([[0.6, 0.3, 0.1], [0.1, 0.5, 0.4]])
    assert torch.allclose(log_probs.exp(), expected.expand(2, 2, 3), atol=1e-6)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 2), atol=1e-6)  # still a distribution per frame
    assert frames.tolist() == [2, 2]
    assert ensemble.train(True) is ensemble and a.training and b.training
    assert ensemble.tokenizer is a.tokenizer and ensemble.frame_shift_seconds == 0.04


def test_members_must_share_alphabet_and_frame_rate():
    probs = [[0.5, 0.25, 0.25]]
    with pytest.raises(CheckpointError, match="alphabet"):
        EnsembleModel([Fixed(probs), Fixed(probs, labels=("", "a", "c"))], ["one", "two"])
    with pytest.raises(CheckpointError, match="frame shift"):
        EnsembleModel([Fixed(probs), Fixed(probs, frame_shift=0.02)])
    with pytest.raises(CheckpointError, match="at least one"):
        EnsembleModel([])
    ragged = EnsembleModel([Fixed(probs), Fixed(probs, frames=2)], ["one", "two"])
    with pytest.raises(CheckpointError, match="frame rates differ"):
        ragged.log_probs(torch.zeros(1, 100), torch.ones(1))


def test_load_ensemble_of_model_folders(tmp_path):
    one, two = _export(tmp_path / "one", 0), _export(tmp_path / "two", 1)
    assert isinstance(load_ensemble([one]), InferenceModel)  # one folder: the model itself
    ensemble = load_ensemble([one, two])
    assert isinstance(ensemble, EnsembleModel) and ensemble.names == [str(one), str(two)]
    wavs, lens = torch.randn(2, 12000), torch.tensor([1.0, 0.6])
    (lp1, frames), (lp2, _) = ensemble.members[0].log_probs(wavs, lens), ensemble.members[1].log_probs(wavs, lens)
    got, got_frames = ensemble.log_probs(wavs, lens)
    assert torch.allclose(got, torch.logaddexp(lp1, lp2) - math.log(2), atol=1e-5)
    assert torch.equal(got_frames, frames) and not torch.allclose(lp1, lp2)
    assert next(ensemble.parameters()).device.type == "cpu"
    with pytest.raises(CheckpointError, match="alphabet"):
        load_ensemble([one, _export(tmp_path / "other", 2, labels="xyz")])
    with pytest.raises(CheckpointError):
        load_ensemble([])


def test_experiment_config_checks_ensemble_folders_now(tmp_path):
    member = _export(tmp_path / "member", 0)
    config = load_experiment_config(overrides={"teachers": {"ensemble": [str(member)]}})
    assert config.teachers.ensemble == [str(member)]
    with pytest.raises(ConfigError, match="not a model folder"):
        load_experiment_config(overrides={"teachers": {"ensemble": [str(tmp_path / "missing")]}})
    with pytest.raises(ConfigError, match="more than once"):
        load_experiment_config(overrides={"teachers": {"ensemble": [str(member), str(member)]}})


def test_folders_made_before_the_ensemble_setting_still_open(tmp_path):
    config = load_experiment_config().to_dict()
    older = json.loads(json.dumps(config))
    del older["teachers"]["ensemble"]
    assert experiment_hash(config) == experiment_hash(older)
    Workdir(tmp_path / "w", older)
    Workdir(tmp_path / "w", config)  # the same experiment: opens
    member = _export(tmp_path / "member", 0)
    with_member = load_experiment_config(overrides={"teachers": {"ensemble": [str(member)]}}).to_dict()
    assert experiment_hash(with_member) != experiment_hash(config)
    with pytest.raises(ConfigError, match="differing keys: teachers"):
        Workdir(tmp_path / "w", with_member)
