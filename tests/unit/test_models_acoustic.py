"""The CTC model: shapes for each encoder, presets' sizes, export/load round trip, pretrained init, adapters."""

from __future__ import annotations

import json

import pytest
import torch

from selftrain.data.tokenizer import CharTokenizer
from selftrain.errors import CheckpointError, ConfigError
from selftrain.models import export_model, load_acoustic_model
from selftrain.models.acoustic import build_model, count_parameters
from selftrain.models.adapters import add_adapters, merge_adapters
from selftrain.models.config import ModelConfig, model_preset
from selftrain.models.pretrained import load_pretrained_encoder

SMALL = {"d_model": 32, "num_layers": 2, "lstm_hidden": 16, "d_ffn": 64, "num_heads": 2, "conv_kernel": 3, "subsample_channels": 4}


@pytest.mark.parametrize("encoder", ["lstm", "conformer", "transformer"])
def test_each_encoder_gives_log_probs_and_frames(encoder):
    model = build_model(ModelConfig.from_dict({"encoder": encoder, **SMALL}), vocab_size=7).eval()
    log_probs, frames = model(torch.randn(3, 16000), torch.tensor([1.0, 0.5, 0.25]))
    assert log_probs.shape == (3, 26, 7)
    assert frames.tolist() == [26, 13, 6]
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(3, 26), atol=1e-4)
    assert model.frame_shift_seconds == pytest.approx(0.04)


@pytest.mark.parametrize("encoder", ["lstm", "conformer", "transformer"])
def test_what_lies_in_the_padding_does_not_change_the_output(encoder):
    model = build_model(ModelConfig.from_dict({"encoder": encoder, **SMALL}), 5).eval()
    wav = torch.randn(1, 8000)
    quiet, frames = model(torch.cat([wav, torch.zeros(1, 8000)], dim=1), torch.tensor([0.5]))
    # the first 25 ms after the end stay silent: the last STFT window legitimately reaches into them
    noise = torch.cat([torch.zeros(1, 400), torch.randn(1, 7600)], dim=1)
    loud, _ = model(torch.cat([wav, noise], dim=1), torch.tensor([0.5]))
    n = int(frames[0])
    assert torch.allclose(quiet[0, :n], loud[0, :n], atol=1e-5)


def test_preset_sizes_match_their_description():
    assert 2e6 <= count_parameters(build_model(model_preset("cpu-small"), 30)) <= 5e6
    assert 2e6 <= count_parameters(build_model(model_preset("cpu-small-conformer"), 30)) <= 5e6
    assert count_parameters(build_model(model_preset("tiny"), 30)) < 1e5
    with pytest.raises(ConfigError, match="unknown preset"):
        model_preset("huge")


def test_unknown_encoder_is_a_config_error():
    with pytest.raises(ConfigError, match="encoder"):
        build_model(ModelConfig(encoder="gru"), 5)


def _tokenizer():
    return CharTokenizer.from_texts(["abc de"])


def test_export_and_load_round_trip_gives_identical_outputs(tmp_path):
    tok = _tokenizer()
    model = build_model(ModelConfig.from_dict(SMALL), tok.vocab_size).eval()
    model.norm.mean.fill_(0.5)  # buffers travel too
    export_model(model, tok, tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"model.pt", "model.json", "tokenizer.json"}
    torch.load(tmp_path / "m" / "model.pt", weights_only=True)  # plain tensors only
    loaded = load_acoustic_model(tmp_path / "m", device="cpu")
    wavs, lens = torch.randn(2, 12000), torch.tensor([1.0, 0.6])
    expected, frames = model(wavs, lens)
    got, got_frames = loaded.log_probs(wavs, lens)
    assert torch.allclose(expected, got, atol=1e-6) and torch.equal(frames, got_frames)
    assert loaded.tokenizer.ctc_labels() == tok.ctc_labels()
    assert loaded.sample_rate == 16000 and loaded.frame_shift_seconds == pytest.approx(0.04)
    assert loaded.train(True) is loaded and loaded.model.training


def test_load_rejects_mismatched_or_missing_files(tmp_path):
    tok = _tokenizer()
    export_model(build_model(ModelConfig.from_dict(SMALL), tok.vocab_size), tok, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["model"]["d_model"] = 48
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match"):
        load_acoustic_model(tmp_path / "m")
    with pytest.raises(CheckpointError):
        load_acoustic_model(tmp_path / "nothing")


def test_pretrained_encoder_init_copies_matching_tensors_only(tmp_path):
    source = build_model(ModelConfig.from_dict(SMALL), vocab_size=9)
    state = {f"module.model.{k}": v for k, v in source.state_dict().items()}
    torch.save(state, tmp_path / "trainer.ckpt")
    target = build_model(ModelConfig.from_dict(SMALL), vocab_size=5)  # another vocabulary: head differs
    report = load_pretrained_encoder(target, tmp_path)
    assert report.loaded > 0
    assert "ctc_head.weight" in report.reasons
    for name, tensor in source.encoder.state_dict().items():
        assert torch.equal(target.encoder.state_dict()[name], tensor)
    same_vocab = build_model(ModelConfig.from_dict(SMALL), vocab_size=9)
    assert "ctc_head.weight" in load_pretrained_encoder(same_vocab, tmp_path).reasons
    assert "ctc_head.weight" not in load_pretrained_encoder(same_vocab, tmp_path, with_head=True).reasons
    assert torch.equal(same_vocab.ctc_head.weight, source.ctc_head.weight)
    other = build_model(ModelConfig.from_dict({**SMALL, "d_model": 24}), 5)
    torch.save({"x": torch.zeros(2)}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="no tensor matches"):
        load_pretrained_encoder(other, tmp_path / "bad.pt")


def test_lora_adapters_train_only_low_rank_parts_and_merge_exactly():
    model = build_model(ModelConfig.from_dict({"encoder": "transformer", **SMALL}), 6).eval()
    before = count_parameters(model)
    adapted = add_adapters(model, rank=2)
    assert adapted > 0
    trainable = {n for n, p in model.encoder.named_parameters() if p.requires_grad}
    assert trainable and all("adapter_" in n for n in trainable)
    assert count_parameters(model) < before
    with torch.no_grad():
        for n, p in model.encoder.named_parameters():
            if "adapter_up_proj" in n:
                p.normal_()
    wavs, lens = torch.randn(2, 8000), torch.ones(2)
    merged = merge_adapters(model).eval()
    assert merged.config.adapter_rank == 0
    assert torch.allclose(model(wavs, lens)[0], merged(wavs, lens)[0], atol=1e-4)
    with pytest.raises(ConfigError, match="no linear layers"):
        add_adapters(build_model(ModelConfig.from_dict(SMALL), 6), rank=2)
