"""Acoustic models: architecture (:mod:`.acoustic`), presets (:mod:`.config`), model folders (:mod:`.export`)
and teacher ensembles (:mod:`.ensemble`).

The names below are imported on first use: they bring torch along, and the configs that read a
preset's defaults (``selftrain run --help``) import :mod:`.config` alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from selftrain.renames import lazy_attributes

if TYPE_CHECKING:
    from selftrain.models.api import AcousticModel
    from selftrain.models.ensemble import EnsembleModel, load_ensemble
    from selftrain.models.export import InferenceModel, export_model, load_acoustic_model, load_ctc_model

__all__ = ["AcousticModel", "EnsembleModel", "InferenceModel", "load_ensemble", "export_model", "load_acoustic_model", "load_ctc_model"]

# name -> module of the names imported on first use
_LAZY = {"AcousticModel": "api", **dict.fromkeys(("EnsembleModel", "load_ensemble"), "ensemble"),
         **dict.fromkeys(("InferenceModel", "export_model", "load_acoustic_model", "load_ctc_model"), "export")}

__getattr__ = lazy_attributes(__name__, _LAZY)
