"""What the stages of an experiment share: where a generation's model and the LM lie, which
generation teaches which, and the decoder settings a generation decodes with."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from selftrain.generation.config import ExperimentConfig
from selftrain.generation.results import TuneStageResult
from selftrain.generation.workdir import Workdir

__all__ = ["LM_FILE", "TUNE_STAGE", "EXTERNAL_STAGE", "model_dir", "teacher_generation", "state_cache_dir",
           "decoder_for", "tuned_settings"]

LM_FILE = "lm.bin"
TUNE_STAGE = "tune"  # W/gen_XXX/tune/: the decoder settings chosen on dev for that generation's model
EXTERNAL_STAGE = "external"  # W/external/: the external teachers' hypotheses, made once per experiment


def model_dir(workdir: Workdir, generation: int) -> Path:
    """The trained model folder of a generation."""
    return workdir.stage_dir(generation, "train") / "model"


def teacher_generation(workdir: Workdir, generation: int) -> int:
    """The generation whose model teaches ``generation``: the newest earlier one that was accepted.

    A student that ended worse than its teacher on dev is rejected (``accepted: false`` in its
    ``generation.json``); its own teacher then stays on, so a bad generation never propagates.
    """
    previous = generation - 1
    record_path = workdir.generation_dir(previous) / "generation.json"
    if previous <= 0 or not record_path.exists():
        return max(previous, 0)
    record = json.loads(record_path.read_text(encoding="utf-8"))
    if record.get("accepted", True):
        return previous
    return int(record["teacher_generation"])


def state_cache_dir(config: ExperimentConfig, workdir: Workdir) -> Path:
    """Where the experiment caches a pretrained encoder's frozen states (``config.state_cache``)."""
    return Path(config.state_cache) if config.state_cache else workdir.root / "state_cache"


def decoder_for(config: ExperimentConfig, workdir: Workdir | None = None, generation: int | None = None,
                    **changes: Any):
    """The experiment's decoder settings; with ``decode_tuning`` on, those tuned for ``generation``'s
    model on dev (its ``tune`` stage) replace the configured ones; then ``changes``."""
    decoder = config.decoder_config()
    if config.decode_tuning.enabled and workdir is not None and generation is not None:
        decoder = decoder.with_tuned(tuned_settings(workdir, generation))
    return replace(decoder, **changes)


def tuned_settings(workdir: Workdir, generation: int) -> dict[str, float]:
    """The decoder settings a generation's ``tune`` stage chose (:class:`DecodeError` before it ran)."""
    from selftrain.errors import DecodeError

    stage = workdir.stage_dir(generation, TUNE_STAGE)
    if not workdir.is_done(stage):
        raise DecodeError(f"decode_tuning is on but generation {generation}'s decoder was not tuned ({stage})")
    return dict(TuneStageResult.read(stage).best)

