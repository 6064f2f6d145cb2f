"""The SpeechBrain-style recipes: every hparams key is used, and a debug run of each on tiny data."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from tests.librispeech_tree import RECIPE_DIR as LIBRISPEECH_DIR
from tests.librispeech_tree import load_recipe_module, write_chapter

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SYNTHETIC_DIR = REPO / "recipes" / "synthetic" / "self_training"
RECIPES = [SYNTHETIC_DIR, LIBRISPEECH_DIR]
DEBUG_TRAIN = (
    "{epochs: 1, max_minutes: 0, early_stop_patience: 0, data: {num_workers: 0, batch_seconds: 8}, "
    "augment: {speed_perturb: false}}"
)  # several batches: SpeechBrain's DDP wrapper of a batch sampler fails when a rank gets exactly one
DEBUG = ["--preset=tiny", "--generations=1", f"--teacher_train={DEBUG_TRAIN}", f"--student_train={DEBUG_TRAIN}",
         "--decode={workers: 0, beam_width: 4, nbest: 2, batch_size: 4}"]


def _recipe_module(recipe_dir: Path):
    if recipe_dir == LIBRISPEECH_DIR:
        return load_recipe_module("train")
    import importlib.util

    spec = importlib.util.spec_from_file_location("synthetic_recipe_train", recipe_dir / "train.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def hparams_problems(recipe_dir: Path, hparams_file: Path, extra: dict | None = None) -> list[str]:
    """Why a recipe's hparams file has keys that nothing uses (empty when every key is consumed).

    A top-level key is used when it is a recipe key that train.py reads (``hparams["key"]``) or that
    another key references (``!ref <key>``), or an ExperimentConfig key; the stage sections must be
    keys of their stage's own config.
    """
    import speechbrain
    from hyperpyyaml import load_hyperpyyaml

    from selftrain.errors import ConfigError
    from selftrain.generation.recipe import recipe_experiment_config

    module = _recipe_module(recipe_dir)
    text = hparams_file.read_text(encoding="utf-8")
    source = (recipe_dir / "train.py").read_text(encoding="utf-8")
    raw = load_hyperpyyaml(text, {"data_folder": "unused"}) | (extra or {})
    problems = [f"recipe key {k} is missing" for k in module.RECIPE_KEYS if k not in raw]
    for key in (k for k in raw if k in module.RECIPE_KEYS):
        if f'hparams["{key}"]' not in source and f"<{key}>" not in text:
            problems.append(f"recipe key {key} is neither read by train.py nor referenced")
    _, run_opts, _ = speechbrain.parse_arguments([str(hparams_file)])
    try:
        recipe_experiment_config(dict(raw), run_opts, module.RECIPE_KEYS)  # resolves every stage section
    except ConfigError as exc:
        problems.append(str(exc))
    return problems


HPARAMS = [path for recipe in RECIPES for path in sorted((recipe / "hparams").glob("*.yaml"))]


@pytest.mark.parametrize("hparams_file", HPARAMS, ids=lambda p: f"{p.parents[2].name}/{p.name}")
def test_every_hparams_key_is_used(hparams_file):
    assert hparams_problems(hparams_file.parents[1], hparams_file) == []


@pytest.mark.parametrize("extra", [{"numbr_of_epochs": 3}, {"teacher_train": {"epochs": 1, "learning_rate": 0.1}},
                                   {"decode": {"beam": 4}}])
def test_an_unused_key_is_reported(extra):
    hparams_file = SYNTHETIC_DIR / "hparams" / "cpu_small.yaml"
    assert hparams_problems(SYNTHETIC_DIR, hparams_file, extra)


def _run_recipe(recipe_dir: Path, args: list[str], nproc: int = 1) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    launcher = [sys.executable] if nproc == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                    "--nproc_per_node", str(nproc)]
    return subprocess.run([*launcher, "train.py", *args], cwd=recipe_dir, env=env, capture_output=True, text=True,
                          timeout=600)


def _check_run(result: subprocess.CompletedProcess, output: Path) -> dict:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "| generation | dev WER |" in result.stdout and "| 1 |" in result.stdout
    summary = json.loads((output / "summary.json").read_text())
    assert [g["generation"] for g in summary["generations"]] == [0, 1]
    assert (output / "hyperparams.yaml").is_file() and (output / "env.log").is_file()
    assert (output / "gen_001" / "select" / "selected.csv").is_file()
    return summary


@pytest.mark.slow
def test_synthetic_recipe_debug_run(tiny_corpus, tmp_path):
    output = tmp_path / "results"
    args = ["hparams/cpu_small.yaml", f"--data_folder={tiny_corpus}", f"--output_folder={output}", "--device=cpu", *DEBUG]
    summary = _check_run(_run_recipe(SYNTHETIC_DIR, args), output)
    assert isinstance(summary["generations"][1]["pseudo_label_wer"], float)
    # --generation N runs (here: finds done) one generation of the same experiment.
    again = _run_recipe(SYNTHETIC_DIR, [*args, "--generation", "1"])
    assert again.returncode == 0 and "| 1 |" in again.stdout


def test_unsupported_run_options_and_unknown_keys_are_refused(tmp_path, capsys):
    module = _recipe_module(SYNTHETIC_DIR)
    base = ["hparams/cpu_small.yaml", f"--data_folder={tmp_path}", f"--output_folder={tmp_path / 'out'}"]
    cwd = os.getcwd()
    os.chdir(SYNTHETIC_DIR)
    try:
        assert module.main([*base, "--debug"]) == 2
        assert "run options ['debug']" in capsys.readouterr().err
        assert module.main([*base, "--numbr_of_epochs=3"]) == 2
        assert "numbr_of_epochs" in capsys.readouterr().err
        assert module.main(base) == 2  # the corpus is not there
        assert "data.labeled" in capsys.readouterr().err
    finally:
        os.chdir(cwd)
    assert not (tmp_path / "out").exists()


def _to_flac(wav: str, out: Path) -> None:
    audio, rate = sf.read(wav, dtype="float32")
    sf.write(str(out), audio, rate, format="FLAC")


@pytest.fixture(scope="module")
def fake_librispeech(tiny_corpus, tmp_path_factory) -> Path:
    """The tiny synthetic corpus laid out as LibriSpeech: one speaker and chapter per split, flac audio,
    upper-case transcripts, the LM corpus file, and one corrupt flac in an unlabeled split."""
    root = tmp_path_factory.mktemp("fake") / "LibriSpeech"
    sources = {"train-clean-100": "labeled", "train-clean-360": "unlabeled_reference", "dev-clean": "dev",
               "test-clean": "test"}
    for speaker, (split, name) in enumerate(sources.items(), start=100):
        with open(tiny_corpus / f"{name}.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        audio = [(sf.read(str(tiny_corpus / r["wav"]), dtype="float32")[0], r["wrd"]) for r in rows]
        write_chapter(root / split, speaker, 1, audio)
    # The -other splits: the second half of the clean ones' audio under another speaker.
    pairs = (("dev-clean", "dev-other"), ("test-clean", "test-other"), ("train-clean-360", "train-other-500"))
    for speaker, (clean, other) in enumerate(pairs, start=300):
        chapter = next((root / clean).glob("*/*"))
        lines = (chapter / f"{chapter.parent.name}-1.trans.txt").read_text().split("\n")
        audio = [(sf.read(str(chapter / f"{line.split()[0]}.flac"), dtype="float32")[0], line.partition(" ")[2])
                 for line in lines if line.strip()]
        write_chapter(root / other, speaker, 2, audio)
    bad = next((root / "train-other-500").glob("*/*"))
    (bad / f"{bad.parent.name}-2-0000.flac").write_bytes(b"corrupt")
    lm_text = (tiny_corpus / "lm_text.txt").read_text(encoding="utf-8").upper()
    (root / "librispeech-lm-norm.txt").write_text(lm_text, encoding="utf-8")
    return root


LIBRISPEECH_DEBUG = ["--device=cpu", "--precision=fp32", "--ddp_poll_seconds=1", *DEBUG]


@pytest.mark.slow
def test_librispeech_recipe_debug_run(fake_librispeech, tmp_path):
    output = tmp_path / "results"
    args = ["hparams/gpu_base_100h.yaml", f"--data_folder={fake_librispeech}", f"--output_folder={output}",
            *LIBRISPEECH_DEBUG]
    _check_run(_run_recipe(LIBRISPEECH_DIR, args), output)
    prepared = json.loads((output / "data" / "prepare.json").read_text())
    assert prepared["utterances"]["test-other"] > 0 and prepared["utterances"]["unlabeled"] > 0
    assert [Path(s["file"]).name for s in prepared["skipped"]] == ["302-2-0000.flac"]
    with open(output / "data" / "unlabeled.csv", newline="", encoding="utf-8") as handle:
        assert all(row["wrd"] == "" for row in csv.DictReader(handle))


@pytest.mark.slow
def test_librispeech_recipe_under_torchrun_shards_pseudo_labeling(fake_librispeech, tmp_path):
    output = tmp_path / "results"
    args = ["hparams/gpu_base_100h.yaml", f"--data_folder={fake_librispeech}", f"--output_folder={output}",
            *LIBRISPEECH_DEBUG]
    _check_run(_run_recipe(LIBRISPEECH_DIR, args, nproc=2), output)
    shards = output / "gen_001" / "decode_shards"
    counts = [json.loads((shards / f"rank_{r}_of_2" / ".done").read_text())["teachers"]["lm"]["decoded"] for r in (0, 1)]
    merged = (output / "gen_001" / "decode" / "unlabeled_lm.jsonl").read_text().splitlines()
    assert sum(counts) == len(merged) > 0
    assert len((output / "gen_001" / "train" / "train_log.txt").read_text().splitlines()) == 1  # one logging process
