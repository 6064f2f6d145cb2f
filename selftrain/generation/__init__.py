"""Self-training generations: the experiment folder, its stages and the summary contract."""

from selftrain.generation.config import DistributedConfig, ExperimentConfig, load_experiment_config
from selftrain.generation.distributed import Rank, run_experiment_distributed
from selftrain.generation.lock import lock_workdir
from selftrain.generation.run import (
    experiment_status,
    open_workdir,
    run_experiment,
    run_generation,
    write_summary,
)
from selftrain.generation.workdir import Workdir, config_hash

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
