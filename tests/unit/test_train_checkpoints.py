"""A process killed (SIGKILL) in the middle of a checkpoint save never leaves a checkpoint that loads."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest
import torch

from selftrain.train.checkpoints import AtomicCheckpointer


def _save_then_die(kind: str, folder: str) -> None:
    """Save checkpoint 1 of a linear layer (all weights 1), then start checkpoint 2 (weights 2) and
    SIGKILL this process after the layer's file is written, before the second object's file."""
    from speechbrain.utils.checkpoints import Checkpointer

    layer, other = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    armed: list[bool] = []

    def save_other(obj, path):
        if armed:
            os.kill(os.getpid(), signal.SIGKILL)
        torch.save(obj.state_dict(), path)

    cls = AtomicCheckpointer if kind == "atomic" else Checkpointer
    checkpointer = cls(folder, recoverables={"layer": layer, "other": other}, custom_save_hooks={"other": save_other})
    torch.nn.init.constant_(layer.weight, 1.0)
    checkpointer.save_checkpoint(name="first")
    torch.nn.init.constant_(layer.weight, 2.0)
    armed.append(True)
    checkpointer.save_checkpoint(name="second")


def _killed_mid_save(kind: str, folder: Path) -> None:
    # A forked child: a real SIGKILL mid-save, without paying for a fresh interpreter's imports.
    child = multiprocessing.get_context("fork").Process(target=_save_then_die, args=(kind, str(folder)))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == -signal.SIGKILL


def test_plain_speechbrain_checkpointer_lists_the_torn_checkpoint(tmp_path):
    """The control: SpeechBrain writes CKPT.yaml first, so the half-written save looks valid."""
    from speechbrain.utils.checkpoints import Checkpointer

    _killed_mid_save("plain", tmp_path)
    names = sorted(c.path.name for c in Checkpointer(tmp_path).list_checkpoints())
    assert names == ["CKPT+first", "CKPT+second"]
    assert not (tmp_path / "CKPT+second" / "other.ckpt").exists()


def test_atomic_checkpointer_recovers_the_last_complete_checkpoint(tmp_path):
    _killed_mid_save("atomic", tmp_path)
    assert (tmp_path / "CKPT+second").is_dir()  # the torn save is on disk ...
    layer, other = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    checkpointer = AtomicCheckpointer(tmp_path, recoverables={"layer": layer, "other": other})
    assert not (tmp_path / "CKPT+second").exists()  # ... and removed when a checkpointer opens the folder
    assert [c.path.name for c in checkpointer.list_checkpoints()] == ["CKPT+first"]
    checkpointer.recover_if_possible()
    assert torch.all(layer.weight == 1.0)


def test_atomic_checkpointer_saves_and_loads_like_speechbrains(tmp_path):
    layer = torch.nn.Linear(3, 1)
    torch.nn.init.constant_(layer.weight, 0.5)
    checkpointer = AtomicCheckpointer(tmp_path, recoverables={"layer": layer})
    checkpointer.save_and_keep_only(meta={"score": 0.3}, num_to_keep=1, min_keys=["score"])
    (saved,) = checkpointer.list_checkpoints()
    assert (saved.path / "CKPT.yaml").exists() and not list(saved.path.glob(".*pending"))
    assert saved.meta["score"] == pytest.approx(0.3)
    fresh = torch.nn.Linear(3, 1)
    AtomicCheckpointer(tmp_path, recoverables={"layer": fresh}).recover_if_possible(min_key="score")
    assert torch.all(fresh.weight == 0.5)


def test_a_corrupt_complete_looking_checkpoint_is_named_in_the_error(tmp_path):
    from selftrain.errors import CheckpointError

    layer = torch.nn.Linear(2, 2)
    checkpointer = AtomicCheckpointer(tmp_path, recoverables={"layer": layer})
    checkpointer.save_checkpoint(name="only")
    target = tmp_path / "CKPT+only" / "layer.ckpt"
    target.write_bytes(target.read_bytes()[:40])  # cut short by something else (a copy, a full disk)
    with pytest.raises(CheckpointError, match="CKPT\\+only.*incomplete or corrupt"):
        AtomicCheckpointer(tmp_path, recoverables={"layer": layer}).recover_if_possible()


def test_a_deletion_killed_part_way_leaves_no_complete_looking_checkpoint(tmp_path, monkeypatch):
    import shutil

    from speechbrain.utils.checkpoints import Checkpointer

    layer = torch.nn.Linear(3, 1)
    checkpointer = AtomicCheckpointer(tmp_path, recoverables={"layer": layer, "counter": torch.nn.Linear(1, 1)})
    checkpointer.save_checkpoint(meta={"score": 0.5})
    (old,) = checkpointer.list_checkpoints()

    def killed_rmtree(path, *args, **kwargs):  # dies after removing one state file
        next(p for p in Path(path).iterdir() if p.suffix == ".ckpt").unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "rmtree", killed_rmtree)
    with pytest.raises(KeyboardInterrupt):
        checkpointer.save_and_keep_only(meta={"score": 0.3}, num_to_keep=1, min_keys=["score"])
    monkeypatch.undo()
    assert old.path.exists() and not (old.path / "CKPT.yaml").exists()  # partial: not listed, removed on open
    assert "_delete_checkpoint" in Checkpointer.__dict__ and Checkpointer._delete_checkpoint is not None
    reopened = AtomicCheckpointer(tmp_path, recoverables={"layer": layer})
    assert not old.path.exists() and len(reopened.list_checkpoints()) == 1
