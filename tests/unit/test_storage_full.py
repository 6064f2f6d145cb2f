"""A full disk or a read-only folder at a write: one clear error naming the path, nothing published
torn, and the same call resumes once there is room."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from selftrain.decode import DecoderConfig, DecoderPool, decode_manifest
from selftrain.errors import LMError, StorageError
from selftrain.generation.workdir import DONE_MARKER, Workdir
from selftrain.io import JsonlWriter, atomic_write_json, read_jsonl
from selftrain.storage import SPACE
from tests.decode_helpers import FakeModel, make_corpus

TEXTS = ["the cat sat", "a dog", "the mat is on the log", "my cat", "a dog sat on a mat", "the log"] * 4


class FullDisk:
    """``os.write`` that fails with ENOSPC once ``room`` more bytes went to files under ``folder``
    (the last write may land part-way, as on a real disk)."""

    def __init__(self, folder: Path, room: int):
        self.folder, self.room, self.full = str(folder), room, False
        self._write = os.write

    def __call__(self, fd: int, data) -> int:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if not target.startswith(self.folder):
            return self._write(fd, data)
        if len(data) > self.room:
            written = self._write(fd, bytes(data[: self.room])) if self.room else 0
            self.room -= written
            self.full = True
            if written:
                return written
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self._write(fd, data)


def _one_line(error: StorageError, path: Path) -> str:
    message = str(error)
    assert "\n" not in message and str(path) in message
    return message


def test_atomic_write_on_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"old": True})
    monkeypatch.setattr(os, "write", FullDisk(tmp_path, room=100))
    with pytest.raises(StorageError) as caught:
        atomic_write_json(path, {"rows": ["x" * 50] * 1000})
    message = _one_line(caught.value, path)
    assert "no space left on device" in message and "free there" in message and "needed" in message
    assert caught.value.needed_bytes is not None and caught.value.needed_bytes > 100
    assert json.loads(path.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]  # no temporary file left


def test_read_only_folder_is_named(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("selftrain.io.tempfile.mkstemp", read_only)
    with pytest.raises(StorageError, match="read-only file system") as caught:
        atomic_write_json(tmp_path / "x.json", {})
    _one_line(caught.value, tmp_path / "x.json")
    monkeypatch.undo()
    atomic_write_json(tmp_path / "x.json", {})


def test_jsonl_writer_fails_cleanly_and_resumes(tmp_path, monkeypatch):
    path = tmp_path / "h.jsonl"
    disk = FullDisk(tmp_path, room=700)
    monkeypatch.setattr(os, "write", disk)
    with pytest.raises(StorageError), JsonlWriter(path, fsync_every=1) as out:
        for i in range(100):
            out.write({"id": f"u{i}", "text": "x" * 40})
    assert disk.full and path.stat().st_size == 700  # a torn last line, as a real full disk leaves it
    monkeypatch.undo()
    with JsonlWriter(path) as out:
        for i in range(100):
            if f"u{i}" not in out.done:
                out.write({"id": f"u{i}", "text": "x" * 40})
    assert [r["id"] for r in read_jsonl(path)] == [f"u{i}" for i in range(100)]


@pytest.fixture
def corpus(tmp_path):
    model = FakeModel()
    utterances = make_corpus(tmp_path / "wav", TEXTS, model.tokenizer.ctc_labels())
    decoder = DecoderPool(DecoderConfig(decoder="greedy", batch_size=4, workers=0), model.tokenizer.ctc_labels(),
                             None, "t0")
    reference = tmp_path / "reference.jsonl"
    decode_manifest(model, utterances, decoder, reference, progress=False)
    return model, utterances, decoder, reference


def test_decode_stage_on_a_full_disk_stops_then_resumes_to_the_same_file(tmp_path, monkeypatch, corpus):
    model, utterances, decoder, reference = corpus
    workdir = Workdir(tmp_path / "work", {"x": 1})
    stage = workdir.stage_dir(1, "decode")

    def decode(out: Path) -> dict:
        report = decode_manifest(model, utterances, decoder, out / "hyps.jsonl", progress=False)
        return {"decoded": report.decoded}

    room = reference.stat().st_size // 2
    monkeypatch.setattr(os, "write", FullDisk(tmp_path / "work", room=room))
    with pytest.raises(StorageError) as caught:
        workdir.run_stage(stage, decode)
    message = _one_line(caught.value, stage / "hyps.jsonl")
    # It asks for the rest of the stream (about half the file) on top of the headroom.
    assert caught.value.needed_bytes is not None and caught.value.needed_bytes > room // 2
    assert "run the same command again" in message
    assert not workdir.is_done(stage)
    monkeypatch.undo()
    result = workdir.run_stage(stage, decode)
    assert 0 < result["decoded"] < len(TEXTS)
    assert (stage / "hyps.jsonl").read_bytes() == reference.read_bytes()


def test_a_library_write_failing_in_a_stage_becomes_a_storage_error(tmp_path):
    workdir = Workdir(tmp_path, {"x": 1})
    stage = workdir.stage_dir(0, "train")

    def torch_save_fails(out: Path) -> dict:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out / "save" / "model.ckpt"))

    with pytest.raises(StorageError, match=r"cannot write .*model\.ckpt: no space left on device"):
        workdir.run_stage(stage, torch_save_fails)
    assert not (stage / DONE_MARKER).exists()
    assert workdir.run_stage(stage, lambda out: {"ok": True})["ok"] is True


def _mount_tmpfs(folder: Path, size: str, remount: bool = False) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    options = f"remount,size={size}" if remount else f"size={size}"
    if shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0


def test_a_real_small_file_system(tmp_path, corpus):
    """On a 64 KiB tmpfs (where the test may mount one): stops with the free space, resumes once it grows."""
    model, utterances, decoder, reference = corpus
    small = tmp_path / "small"
    if not _mount_tmpfs(small, "16k"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        filler = small / "filler"
        filler.write_bytes(b"\0" * 8192)
        out = small / "hyps.jsonl"
        with pytest.raises(StorageError, match="no space left on device") as caught:
            decode_manifest(model, utterances, decoder, out, progress=False)
        _one_line(caught.value, out)
        assert caught.value.free_bytes is not None and caught.value.free_bytes < 16384
        assert _mount_tmpfs(small, "1m", remount=True)
        decode_manifest(model, utterances, decoder, out, progress=False)
        assert out.read_bytes() == reference.read_bytes()
    finally:
        subprocess.run(["umount", "--lazy", str(small)], capture_output=True)  # torch may still hold its file


def test_a_checkpoint_save_on_a_full_file_system(tmp_path):
    """torch.save raises a RuntimeError, not an OSError, on a full disk: the stage still names it."""
    import torch

    small = tmp_path / "small"
    if not _mount_tmpfs(small, "64k"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        workdir = Workdir(small / "work", {"x": 1})
        stage = workdir.stage_dir(0, "train")

        def save(out: Path) -> dict:
            (out / "save" / "CKPT+1").mkdir(parents=True)
            (out / "save" / "CKPT+1" / "model.ckpt").write_bytes(b"\0" * 20_000)  # the last complete checkpoint
            torch.save({"w": torch.zeros(100_000)}, out / "save" / "model.ckpt")
            return {}

        with pytest.raises(StorageError, match="no space left on device") as caught:
            workdir.run_stage(stage, save)
        _one_line(caught.value, stage)
        assert caught.value.needed_bytes is not None and caught.value.needed_bytes >= 20_000 + SPACE.headroom_bytes
        assert not workdir.is_done(stage)
    finally:
        subprocess.run(["umount", "--lazy", str(small)], capture_output=True)  # torch may still hold its file


def test_cli_reports_a_full_disk_in_one_line(tmp_path, monkeypatch, corpus):
    from click.testing import CliRunner

    from selftrain.cli import main
    from selftrain.data.manifest import write_manifest

    _, utterances, _, _ = corpus
    source = tmp_path / "in.csv"
    write_manifest(utterances, source)
    target = tmp_path / "out" / "manifest.jsonl"
    target.parent.mkdir()
    monkeypatch.setattr(os, "write", FullDisk(target.parent, room=10))
    result = CliRunner().invoke(main, ["data", "convert", str(source), str(target)])
    assert result.exit_code == 1 and "Usage:" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and f"cannot write {target}: no space left on device" in errors[0]
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_an_lm_tool_failing_on_a_full_disk_is_named_in_one_line(tmp_path, monkeypatch):
    import sys

    from selftrain.lm import tools

    monkeypatch.setattr(tools, "free_bytes", lambda folder: 1024)
    failing = [sys.executable, "-c", "import sys; sys.stderr.write('write failed\\nline two\\n'); sys.exit(1)"]
    with pytest.raises(StorageError, match=f"cannot write {tmp_path}: no space left on device") as caught:
        tools.run_tool(failing, stdout_path=tmp_path / "lm.arpa")
    assert "\n" not in str(caught.value)
    monkeypatch.setattr(tools, "free_bytes", lambda folder: 10 * 2**30)
    with pytest.raises(LMError, match="failed \\(exit 1\\)"):
        tools.run_tool(failing, stdout_path=tmp_path / "lm.arpa")
