"""Training: configuration (:mod:`.config`), data (:mod:`.data`), the Brain (:mod:`.brain`) and :func:`train`."""

from selftrain.train.config import TrainConfig, load_train_config, parse_overrides
from selftrain.train.run import train

__all__ = ["TrainConfig", "load_train_config", "parse_overrides", "train"]
