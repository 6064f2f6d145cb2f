"""Self-supervised objectives (:mod:`.objectives`), masking (:mod:`.masking`) and loss combination (:mod:`.combine`)."""

from selftrain.ssl.combine import STRATEGIES, build_combiner
from selftrain.ssl.objectives import OBJECTIVES, TargetCache, build_objectives

__all__ = ["OBJECTIVES", "STRATEGIES", "TargetCache", "build_combiner", "build_objectives"]
