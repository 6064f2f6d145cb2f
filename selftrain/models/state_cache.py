"""An on-disk cache of a pretrained encoder's frozen bottom: computed once per utterance, then reused by
every epoch, the teacher, every student and every decoding pass.

An entry is keyed by the utterance's audio samples (sha1 of the float32 waveform, so a moved or
renamed file still hits and a rewritten one misses) and a fingerprint of the frozen part (its
tensors, the front-end's settings and the module layout). Entries are float16 ``[frames, width]``
tensors written atomically; a missing, unreadable or mis-shaped entry is recomputed and rewritten,
never trusted. A miss is computed for its utterance alone, so an entry does not depend on which
batch or padding it first came with. Values are always returned as stored (float16 rounded), so a
run that finds an entry and one that computes it see the same numbers.

The cache sits under the frozen part only: what changes the audio (speed perturbation, additive
noise) cannot go through it, and a model whose front-end trains is never cached.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence

__all__ = ["FrozenStateCache", "frozen_fingerprint"]

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when the meaning of an entry changes


def frozen_fingerprint(model) -> str:
    """sha256 over the frozen part's tensors, its layout and the front-end settings of ``model``."""
    digest = hashlib.sha256(f"v{CACHE_VERSION}|{model.config.encoder}|{model.config.frozen_layers}|"
                            f"{model.config.features.sample_rate}|{model.config.features.n_mels}".encode())
    for name, tensor in sorted(model.subsampler.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
    return digest.hexdigest()


class FrozenStateCache:
    """``latents(model, wavs, rel_lens)``: the frozen part's output for a padded batch, from disk when
    it is there. ``hits``/``misses``/``rewritten`` count lookups (rewritten: bad entries replaced)."""

    def __init__(self, root: str | Path, model):
        self.fingerprint = frozen_fingerprint(model)
        self.folder = Path(root) / self.fingerprint[:20]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.width = int(model.config.d_model)
        self.hits = self.misses = self.rewritten = 0

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.pt"

    def _read(self, path: Path, frames: int) -> torch.Tensor | None:
        if not path.exists():
            return None
        try:
            value = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a torn file fails in many ways inside torch.load; all mean "recompute"
            log.warning("frozen-state cache entry %s is unreadable (%s): recomputing it", path, exc)
            self.rewritten += 1
            return None
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != (frames, self.width):
            log.warning("frozen-state cache entry %s has the wrong shape: recomputing it", path)
            self.rewritten += 1
            return None
        return value

    def _write(self, path: Path, value: torch.Tensor) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as out:
                torch.save(value, out)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @torch.no_grad()
    def one(self, model, wav: torch.Tensor) -> torch.Tensor:
        """The frozen part's output ``[frames, width]`` (float32 of the stored float16) for one waveform."""
        samples = wav.detach().float().cpu().contiguous()
        key = hashlib.sha1(samples.numpy().tobytes()).hexdigest()
        frames = model.num_latent_frames(model.num_mel_frames(samples.shape[0]))
        path = self._path(key)
        found = self._read(path, frames)
        if found is not None:
            self.hits += 1
            return found.float().to(wav.device)
        self.misses += 1
        ones = torch.ones(1, device=wav.device)
        value = model.subsample(model.features(wav[None].float(), ones), ones)[0].half().cpu()
        if value.shape[0] != frames:
            raise RuntimeError(f"frozen part gave {value.shape[0]} frames for {samples.shape[0]} samples, expected {frames}")
        self._write(path, value)
        return value.float().to(wav.device)

    def latents(self, model, wavs: torch.Tensor, rel_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``([B, T', width], relative lengths [B])`` for a padded batch (each row from its own valid
        samples; zero padding)."""
        lengths = (rel_lens * wavs.shape[1]).round().long().clamp(min=1, max=wavs.shape[1])
        rows = [self.one(model, wavs[b, : int(n)]) for b, n in enumerate(lengths.tolist())]
        padded = pad_sequence(rows, batch_first=True)
        frames = torch.tensor([r.shape[0] for r in rows], device=padded.device, dtype=padded.dtype)
        return padded, frames / padded.shape[1]
