"""SpeechBrain's Checkpointer, made crash-safe: a checkpoint becomes visible only when complete.

SpeechBrain marks a checkpoint folder valid by its ``CKPT.yaml`` and writes that file *first*, then
the parameter files. A kill in between leaves a folder that the next run takes for the newest
checkpoint and fails to load (or loads with objects missing). Here the meta file is written under
a hidden name, and renamed into place only after every parameter file is written and fsync'ed;
folders that a killed save left without meta are removed when the checkpointer is built.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from speechbrain.utils.checkpoints import CKPT_PREFIX, METAFNAME, Checkpointer
from speechbrain.utils.distributed import main_process_only

from selftrain.errors import CheckpointError

__all__ = ["AtomicCheckpointer", "remove_partial_checkpoints"]

log = logging.getLogger(__name__)
PENDING_META = f".{METAFNAME}.pending"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_partial_checkpoints(checkpoints_dir: str | Path) -> list[Path]:
    """Delete checkpoint folders that an interrupted save left without their meta file."""
    removed: list[Path] = []
    root = Path(checkpoints_dir)
    if not root.is_dir():
        return removed
    for folder in sorted(root.glob(f"{CKPT_PREFIX}*")):
        if folder.is_dir() and not (folder / METAFNAME).exists():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        log.warning("removed %d incomplete checkpoint(s) left by an interrupted save: %s",
                    len(removed), ", ".join(f.name for f in removed))
    return removed


def delete_unpublished_first(checkpoint, verbosity=logging.INFO) -> None:
    """Delete a checkpoint folder so that a kill part-way leaves no folder that looks complete: its
    meta file goes first (the folder is then partial, removed on the next open), then the rest."""
    folder = Path(checkpoint.path)
    if not (folder / METAFNAME).exists():
        raise RuntimeError(f"{folder} does not look like a checkpoint; not deleting it")
    (folder / METAFNAME).unlink()
    _fsync(folder)
    shutil.rmtree(folder)
    log.log(verbosity, "deleted checkpoint %s", folder)


class AtomicCheckpointer(Checkpointer):
    """A :class:`~speechbrain.utils.checkpoints.Checkpointer` whose saves are all-or-nothing.

    Use it exactly like SpeechBrain's (same arguments and methods); only the order of writes differs.
    """

    def __init__(self, checkpoints_dir, *args, **kwargs):
        from speechbrain.utils.distributed import if_main_process

        if if_main_process():
            remove_partial_checkpoints(checkpoints_dir)
        super().__init__(checkpoints_dir, *args, **kwargs)
        self._pending_meta: tuple[Path, Path] | None = None

    def _save_checkpoint_metafile(self, fpath, meta_to_include=None, end_of_epoch=True):
        fpath = Path(fpath)
        staged = fpath.with_name(PENDING_META)
        meta = super()._save_checkpoint_metafile(staged, meta_to_include or {}, end_of_epoch)
        self._pending_meta = (staged, fpath)
        return meta

    def delete_checkpoints(self, *args, **kwargs):
        """Delete like SpeechBrain, each folder through :func:`delete_unpublished_first`: SpeechBrain's
        ``rmtree`` killed part-way left a folder with its meta file but without some of its state."""
        # SpeechBrain calls the deletion through the class (Checkpointer._delete_checkpoint), so a
        # subclass cannot override it; it is swapped for the duration of this call only.
        original = Checkpointer.__dict__["_delete_checkpoint"]
        Checkpointer._delete_checkpoint = staticmethod(main_process_only(delete_unpublished_first))  # as SpeechBrain's
        try:
            return super().delete_checkpoints(*args, **kwargs)
        finally:
            Checkpointer._delete_checkpoint = original

    def load_checkpoint(self, checkpoint):
        """Load like SpeechBrain; a checkpoint that cannot be read raises :class:`CheckpointError` naming it.

        (Truncated files surface as EOFError or torch's RuntimeError, which the CLI would otherwise
        report as a bare "Aborted!".) Checkpoints written by this class are complete; a corrupt one
        comes from elsewhere (a full disk, an older version, a copy cut short).
        """
        try:
            super().load_checkpoint(checkpoint)
        except (EOFError, RuntimeError, FileNotFoundError) as exc:
            raise CheckpointError(f"cannot resume from {checkpoint.path}: the checkpoint is incomplete or corrupt "
                                  f"({type(exc).__name__}: {exc}); delete that folder to resume from the one "
                                  "before it, or the whole save/ folder to start over") from exc

    def save_checkpoint(self, *args, **kwargs):
        """Save like SpeechBrain, then publish the checkpoint by renaming its meta file into place."""
        from speechbrain.utils.distributed import ddp_barrier

        self._pending_meta = None
        checkpoint = super().save_checkpoint(*args, **kwargs)
        if self._pending_meta is not None:  # the main process wrote the files
            staged, final = self._pending_meta
            for path in staged.parent.iterdir():
                if path.is_file():
                    _fsync(path)
            os.replace(staged, final)
            _fsync(final.parent)
            self._pending_meta = None
        # Every process must see the published checkpoint before it lists checkpoints again (keeping
        # and deleting them runs collective steps; ranks with different lists wait on each other forever).
        ddp_barrier()
        return checkpoint
