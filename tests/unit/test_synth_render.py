"""Retry, skip and resume logic of the renderer, with the synthesizer and sox replaced by fakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from selftrain.synth import render
from selftrain.synth.effects import Conditions
from selftrain.synth.errors import SynthError
from selftrain.synth.plan import UttPlan
from selftrain.synth.render import RenderSettings, chunk_plans, render_chunk, render_plans


def _plan(i: int, voice: str = "espeak:en-us+m3") -> UttPlan:
    return UttPlan(
        f"dev-{i:05d}",
        "dev",
        "some words here now",
        "Some words here now.",
        voice,
        "known",
        Conditions(),
        f"wav/dev/dev-{i:05d}.wav",
    )


@pytest.fixture
def fakes(monkeypatch):
    calls = {"synth": 0, "finish": 0, "fail_first": 0, "fail_always": False}

    def synthesize(voice, text, out):
        calls["synth"] += 1
        if calls["fail_always"] or calls["synth"] <= calls["fail_first"]:
            raise SynthError("espeak-ng exited with 1")
        Path(out).write_bytes(b"raw")

    def finish(plan, raw, settings):
        calls["finish"] += 1
        target = Path(settings.out_dir, plan.wav)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"wav")

    monkeypatch.setattr(render, "synthesize", synthesize)
    monkeypatch.setattr(render, "_finish", finish)
    return calls


def test_a_failing_utterance_is_retried_once_then_reported(fakes, tmp_path):
    fakes["fail_always"] = True
    results = render_chunk([_plan(0)], RenderSettings(str(tmp_path), 16000, 0))
    assert fakes["synth"] == 2
    assert results[0][0] == "dev-00000" and "espeak-ng exited with 1" in results[0][1]


def test_a_retry_that_succeeds_is_not_reported(fakes, tmp_path):
    fakes["fail_first"] = 1
    assert render_chunk([_plan(0), _plan(1)], RenderSettings(str(tmp_path), 16000, 0)) == [
        ("dev-00000", None),
        ("dev-00001", None),
    ]
    assert fakes["synth"] == 3 and fakes["finish"] == 2


def test_render_plans_skips_existing_wavs_and_collects_failures(fakes, tmp_path):
    plans = [_plan(i) for i in range(5)]
    existing = tmp_path / plans[2].wav
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"done before")
    progress: list[int] = []
    assert (
        render_plans(plans, RenderSettings(str(tmp_path), 16000, 0), workers=1, progress=progress.append)
        == {}
    )
    assert sum(progress) == 4 and fakes["finish"] == 4
    assert existing.read_bytes() == b"done before"
    fakes["fail_always"] = True
    more = [_plan(i) for i in range(5, 7)]
    failures = render_plans(plans + more, RenderSettings(str(tmp_path), 16000, 0), workers=1)
    assert sorted(failures) == ["dev-00005", "dev-00006"]


def test_chunks_group_one_voice_and_put_festival_first():
    plans = [_plan(i, "espeak:en-us+m3") for i in range(30)] + [
        _plan(100 + i, "festival:kal") for i in range(50)
    ]
    chunks = chunk_plans(plans)
    assert all(len({p.voice for p in chunk}) == 1 for chunk in chunks)
    assert chunks[0][0].voice == "festival:kal"
    assert [len(c) for c in chunks] == [render.FESTIVAL_CHUNK, 50 - render.FESTIVAL_CHUNK, 12, 12, 6]
    assert sorted(p.id for c in chunks for p in c) == sorted(p.id for p in plans)
