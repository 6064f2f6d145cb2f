"""A fake LibriSpeech folder in the real layout (``split/speaker/chapter/speaker-chapter-utt.flac`` and
``speaker-chapter.trans.txt``), for the LibriSpeech recipe's tests."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import soundfile as sf

RECIPE_DIR = Path(__file__).resolve().parents[1] / "recipes" / "LibriSpeech" / "self_training"


def load_recipe_module(name: str) -> ModuleType:
    """Import ``recipes/LibriSpeech/self_training/<name>.py`` (recipes are not a package)."""
    module_name = f"librispeech_recipe_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, RECIPE_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def tone(seconds: float, seed: int, sample_rate: int = 16000) -> np.ndarray:
    """A short noisy tone: real audio for soundfile, no speech needed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def write_chapter(split_dir: Path, speaker: int, chapter: int, utterances: Sequence[tuple[np.ndarray, str]],
                  sample_rate: int = 16000) -> list[str]:
    """One chapter folder: a flac per utterance and the chapter's transcript file; returns the ids."""
    folder = split_dir / str(speaker) / str(chapter)
    folder.mkdir(parents=True, exist_ok=True)
    ids, lines = [], []
    for index, (audio, text) in enumerate(utterances):
        utt_id = f"{speaker}-{chapter}-{index:04d}"
        sf.write(str(folder / f"{utt_id}.flac"), audio, sample_rate, format="FLAC")
        ids.append(utt_id)
        lines.append(f"{utt_id} {text.upper()}")
    (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ids
