"""The experiment work folder: stages with done markers, a config hash, atomic results.

Layout::

    W/experiment.json          resolved config + its hash (a folder belongs to one experiment), folder version
    W/lm/                      the n-gram LM
    W/gen_000/                 teacher trained on labeled data only
    W/gen_001/ ...             decode/, select/, train/, audit/, generation.json
    W/gen_00N/tune/            the decoder settings chosen on dev for that model (``decode_tuning``)
    W/summary.json             per-generation figures (the contract users' scripts rely on)
    W/.lock                    who works in the folder now (:mod:`selftrain.generation.lock`)

Each stage writes into its own folder and leaves ``.done`` (JSON: what it produced, how long it took)
only when everything is written, so a re-run skips finished stages and redoes a stage that was
interrupted. A stage's own resumable work (decoding, training checkpoints) continues from where it
stopped.

What the folder holds and how its files read is versioned (:data:`WORKDIR_VERSION`, in
``experiment.json``): a folder of a newer version is refused, not misread; one without a version
was made before versions were recorded and is version 1. A folder keeps the version it was made
with, and the stages read it (:attr:`Workdir.version`) where versions differ in what they do, so an
older folder resumes as it started.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from selftrain.errors import ConfigError
from selftrain.io import atomic_write_json
from selftrain.renames import SECTION_RENAMES, move_keys
from selftrain.storage import as_storage_error, folder_bytes, storage_errors

__all__ = ["Workdir", "config_hash", "experiment_hash", "DONE_MARKER", "WORKDIR_VERSION", "SEED_STRIDE"]

log = logging.getLogger(__name__)
DONE_MARKER = ".done"
# The version of the folder's layout and files that this code reads and writes, raised by a change
# that older code would misread or that changes what a stage does with the same config:
#   1: the layout above, done markers as selftrain.generation.results reads them; the run of index i
#      (generation i's training, dropout teacher i) is seeded with seed + i.
#   2: runs are seeded with seed * SEED_STRIDE + i (the same for seed 0), so that experiments of
#      neighbouring seeds no longer share seeds (seed 1's generation 1 was seed 2's generation 0).
WORKDIR_VERSION = 2
SEED_STRIDE = 1000  # more than any experiment's generations or dropout teachers
# Keys that may change between runs of one experiment: asking for more generations extends it.
EXTENDABLE_KEYS = ("generations",)
# Keys added to the experiment config after folders were written without them, each with the value
# that does what those folders did: a config holding that value hashes as if the key were absent, so
# the older folders still open (a key whose default changed behaviour does not belong here).
NEUTRAL_ADDITIONS: dict[tuple[str, str], Any] = {("teachers", "ensemble"): []}
# Keys renamed after folders were written (selftrain.renames), per section: new place -> old place. The
# identity keeps the old names, so a config giving the new ones hashes as the folder written with the old.
OLD_NAMES = {section: {new: old for old, new in moves.items()} for section, moves in SECTION_RENAMES.items()}
T = TypeVar("T")


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able config (key order does not matter)."""
    canonical = json.dumps(config, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _identity(config: dict[str, Any]) -> dict[str, Any]:
    """What ties a work folder to one experiment: the config without :data:`EXTENDABLE_KEYS`, without
    the :data:`NEUTRAL_ADDITIONS` that hold their neutral value, and with the renamed keys under their
    old names (:data:`OLD_NAMES`)."""
    kept = {k: v for k, v in config.items() if k not in EXTENDABLE_KEYS}
    for (section, key), neutral in NEUTRAL_ADDITIONS.items():
        if isinstance(kept.get(section), dict) and kept[section].get(key, neutral) == neutral:
            kept[section] = {k: v for k, v in kept[section].items() if k != key}
    for section, moves in OLD_NAMES.items():
        if isinstance(kept.get(section), dict):
            kept[section] = move_keys(kept[section], moves)
    return kept


def experiment_hash(config: dict[str, Any]) -> str:
    """The hash of a config's identity (:func:`_identity`)."""
    return config_hash(_identity(config))


class Workdir:
    """One experiment's folder. Opening it with a different config is refused before any work."""

    def __init__(self, root: str | Path, config: dict[str, Any] | None = None):
        self.root = Path(root)
        self.experiment_file = self.root / "experiment.json"
        if config is not None:
            self._bind(config)

    def _bind(self, config: dict[str, Any]) -> None:
        digest = experiment_hash(config)
        if self.experiment_file.exists():
            stored_config = self._stored()
            # Recomputed from the stored config, so folders written by older versions still compare.
            stored_digest = experiment_hash(stored_config)
            if stored_digest != digest:
                stored_identity, identity = _identity(stored_config), _identity(config)
                changed = sorted(k for k in {*stored_identity, *identity} if stored_identity.get(k) != identity.get(k))
                hint = ""
                if "speaking_rate_quantile" in changed and "speaking_rate_quantile" not in stored_config:
                    hint = (" The folder was made with the fixed speaking-rate bounds (before they became the default): "
                            "--set speaking_rate_quantile=null resumes it.")
                raise ConfigError(
                    f"{self.root} belongs to another experiment (config hash {stored_digest} != {digest}; "
                    f"differing keys: {', '.join(changed) or 'nested values'}). Use a new --workdir, or the same config."
                    + hint
                )
            if stored_config == config:
                return
            log.info("%s: generations planned %s -> %s", self.root, stored_config.get("generations"), config.get("generations"))
        self._write(config)

    def _write(self, config: dict[str, Any]) -> None:
        """Write ``experiment.json`` with ``config``, keeping the version of a folder that has one."""
        version = self.version
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.experiment_file, {"config_hash": experiment_hash(config), "config": config,
                                                 "version": version})

    @property
    def version(self) -> int:
        """The folder's version: the one it was made with, or this code's for a folder not made yet."""
        return self._record()["version"] if self.experiment_file.exists() else WORKDIR_VERSION

    def run_seed(self, seed: int, index: int) -> int:
        """The seed of run ``index`` (a generation's training, a dropout teacher) of an experiment with
        ``seed``, as this folder's version derives it (see :data:`WORKDIR_VERSION`)."""
        return seed + index if self.version == 1 else seed * SEED_STRIDE + index

    def rebind(self, config: dict[str, Any]) -> None:
        """Bind the folder to ``config`` whichever experiment it holds, keeping its finished stages:
        for a caller that knows those stages are what ``config`` makes (a folder written while the
        same work was configured otherwise). An unreadable folder, or one of a newer version, is
        refused, not rewritten."""
        self._stored()
        log.info("%s: rebound to config hash %s", self.root, experiment_hash(config))
        self._write(config)

    def _stored(self) -> dict[str, Any]:
        """The config in ``experiment.json`` (see :meth:`_record`)."""
        return self._record()["config"]

    def _record(self) -> dict[str, Any]:
        """``experiment.json`` with its version (1 when it has none); :class:`ConfigError` naming the file
        when it is unreadable or holds no config, or naming both versions when this code cannot read it."""
        try:
            stored = json.loads(self.experiment_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.experiment_file} is unreadable ({exc}); it does not say which experiment "
                              f"{self.root} holds: use a new --workdir") from exc
        if not isinstance(stored, dict) or not isinstance(stored.get("config"), dict):
            raise ConfigError(f"{self.experiment_file} has no experiment config; use a new --workdir")
        version = stored.get("version", 1)  # folders made before the version was recorded are version 1
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= WORKDIR_VERSION:
            raise ConfigError(f"{self.root} is a work folder of version {version!r}; this selftrain reads work folders "
                              f"up to version {WORKDIR_VERSION}: use the selftrain that made it, or a new --workdir")
        return {**stored, "version": version}

    def config(self) -> dict[str, Any]:
        """The stored experiment config."""
        if not self.experiment_file.exists():
            raise ConfigError(f"{self.root} is not an experiment folder (no experiment.json)")
        return self._stored()

    def generation_dir(self, generation: int) -> Path:
        return self.root / f"gen_{generation:03d}"

    def stage_dir(self, generation: int | None, stage: str) -> Path:
        base = self.root if generation is None else self.generation_dir(generation)
        return base / stage

    @staticmethod
    def is_done(stage_dir: Path) -> bool:
        return (stage_dir / DONE_MARKER).exists()

    @staticmethod
    def done_info(stage_dir: Path) -> dict[str, Any]:
        marker = stage_dir / DONE_MARKER
        return json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else {}

    def run_stage(self, stage_dir: Path, work: Callable[[Path], dict[str, Any]], force: bool = False) -> dict[str, Any]:
        """Run ``work(stage_dir)`` unless the stage is done; record its result and time in the marker.

        ``work`` returns a JSON-able dict of what it produced (paths relative to the stage, figures).
        A full disk or a read-only folder at any of its writes raises
        :class:`~selftrain.errors.StorageError` (no marker: the next run redoes or resumes the stage).
        """
        if self.is_done(stage_dir) and not force:
            log.info("%s: done, skipping", stage_dir.relative_to(self.root))
            return self.done_info(stage_dir)
        with storage_errors(stage_dir):
            (stage_dir / DONE_MARKER).unlink(missing_ok=True)
            stage_dir.mkdir(parents=True, exist_ok=True)
        log.info("%s: running", stage_dir.relative_to(self.root))
        start = time.time()
        try:
            result = dict(work(stage_dir))
        except Exception as exc:
            storage = as_storage_error(exc, stage_dir, _checkpoint_bytes(stage_dir))
            if storage is None or storage is exc:
                raise
            raise storage from exc
        result["seconds"] = round(time.time() - start, 1)
        atomic_write_json(stage_dir / DONE_MARKER, result)
        return result

    def adopt(self, source: str | Path, paths: list[str]) -> list[str]:
        """Take finished work from another experiment's folder instead of redoing it.

        ``paths`` are folders relative to both roots (``lm``, ``gen_000``, ``gen_001/decode``...);
        each must hold finished stages in ``source``. For experiments that differ only in later
        stages (ablations of the selection or of the student) that share a teacher. Files are hard
        links where the file system allows (stages never rewrite a finished file), else copies.
        Returns the paths adopted (those already present here are left alone).
        """
        source = Path(source)
        adopted = []
        for rel in paths:
            origin, target = source / rel, self.root / rel
            if target.exists():
                continue
            stages = [origin] if (origin / DONE_MARKER).exists() else [d for d in origin.glob("*") if d.is_dir()]
            if not origin.is_dir() or not stages or not all(self.is_done(d) for d in stages):
                raise ConfigError(f"{origin} is not finished work of an experiment (stage .done markers missing)")
            partial = target.with_name(target.name + ".adopting")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(origin, partial, copy_function=_link_or_copy)
            partial.rename(target)
            adopted.append(rel)
        return adopted


# Where a training stage keeps its checkpoints (selftrain.train.build: <stage>/save/CKPT+...).
CHECKPOINT_GLOB = "save/CKPT*"


def _checkpoint_bytes(stage_dir: Path) -> int:
    """The size of the stage's largest checkpoint: what a checkpoint save that failed needs again (0 without one)."""
    return max((folder_bytes(d) for d in stage_dir.glob(CHECKPOINT_GLOB) if d.is_dir()), default=0)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
