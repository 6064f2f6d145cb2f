"""Acoustic models: architecture (:mod:`.acoustic`), presets (:mod:`.config`), model folders (:mod:`.export`)
and teacher ensembles (:mod:`.ensemble`)."""

from selftrain.models.api import AcousticModel
from selftrain.models.ensemble import EnsembleModel, load_ensemble
from selftrain.models.export import InferenceModel, export_model, load_acoustic_model, load_ctc_model

__all__ = ["AcousticModel", "EnsembleModel", "InferenceModel", "load_ensemble", "export_model", "load_acoustic_model", "load_ctc_model"]
