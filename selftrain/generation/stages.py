"""The stages of an experiment, each a function of (config, workdir, generation, stage folder) that
returns its typed result (:mod:`selftrain.generation.results`).

Stages call the library (train, decode, select, audit); :mod:`selftrain.generation.registry` says
which a generation has and in which order, :mod:`selftrain.generation.run` runs them and skips
finished ones. They live by family: training (:mod:`.stages_train`), decoding and evaluation
(:mod:`.stages_decode`), selection and audit (:mod:`.stages_select`); what they share (model
folders, the teacher of a generation, decoder settings) is in :mod:`.artifacts`. This module
gathers them under one name.
"""

from __future__ import annotations

from selftrain.generation.artifacts import (
    EXTERNAL_STAGE,
    LM_FILE,
    TUNE_STAGE,
    model_dir,
    state_cache_dir,
    teacher_generation,
    tuned_settings,
)
from selftrain.generation.stages_decode import (
    decode_generation,
    decode_teachers,
    evaluate_generation,
    evaluate_hyps,
    transcribe_external,
    tune_generation,
)
from selftrain.generation.stages_select import audit_generation, select_pseudo_labels, selection_inputs
from selftrain.generation.stages_train import build_language_model, train_continuous, train_model

__all__ = ["train_model", "train_continuous", "build_language_model", "decode_teachers", "decode_generation",
           "transcribe_external", "evaluate_hyps", "evaluate_generation", "selection_inputs", "select_pseudo_labels",
           "audit_generation", "model_dir", "teacher_generation", "tune_generation", "tuned_settings", "LM_FILE",
           "EXTERNAL_STAGE", "TUNE_STAGE", "state_cache_dir"]
