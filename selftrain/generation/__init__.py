"""Self-training generations: the experiment folder, its stages and the summary contract.

The configs and the work folder are imported with the package; the rest on first use, since it
brings torch along and ``selftrain run --help`` reads the config's defaults only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from selftrain.generation.config import DistributedConfig, ExperimentConfig, load_experiment_config
from selftrain.generation.lock import lock_workdir
from selftrain.generation.workdir import Workdir, config_hash
from selftrain.renames import lazy_attributes

if TYPE_CHECKING:
    from selftrain.generation.distributed import Rank, run_experiment_distributed
    from selftrain.generation.run import (
        experiment_status,
        open_workdir,
        run_experiment,
        run_generation,
        write_summary,
    )

__all__ = [
    "ExperimentConfig",
    "DistributedConfig",
    "load_experiment_config",
    "Workdir",
    "config_hash",
    "open_workdir",
    "lock_workdir",
    "run_experiment",
    "run_generation",
    "write_summary",
    "experiment_status",
    "Rank",
    "run_experiment_distributed",
]

# name -> module of the names imported on first use
_LAZY = {
    **dict.fromkeys(("experiment_status", "open_workdir", "run_experiment", "run_generation", "write_summary"), "run"),
    **dict.fromkeys(("Rank", "run_experiment_distributed"), "distributed"),
}

__getattr__ = lazy_attributes(__name__, _LAZY)
