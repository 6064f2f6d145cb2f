"""Acoustic models: architecture (:mod:`.acoustic`), presets (:mod:`.config`) and model folders (:mod:`.export`)."""

from selftrain.models.api import AcousticModel
from selftrain.models.export import InferenceModel, export_model, load_acoustic_model, load_ctc_model

__all__ = ["AcousticModel", "InferenceModel", "export_model", "load_acoustic_model", "load_ctc_model"]
