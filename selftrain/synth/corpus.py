"""Build the synthetic self-training corpus: text, plan, babble material, audio, manifests, summary.

>>> from selftrain.synth import SynthConfig, build_corpus
>>> summary = build_corpus(SynthConfig(scale=0.01), "corpus", workers=2)  # doctest: +SKIP
>>> summary["hours"]["labeled"]  # doctest: +SKIP

Output folder (CSV paths are relative to it)::

    labeled.csv  unlabeled.csv  unlabeled_reference.csv  dev.csv  test.csv  dev_source.csv
    lm_text.txt  corpus.json  wav/<split>/<id>.wav  noise/babble-*.wav  .synth_config.json
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import soundfile as sf

from selftrain import __version__
from selftrain.data.manifest import write_speechbrain_csv
from selftrain.io import atomic_write_json, atomic_write_text
from selftrain.record import Utterance
from selftrain.synth.config import SPLITS, SynthConfig
from selftrain.synth.errors import SynthError
from selftrain.synth.plan import UttPlan, plan_babble, plan_corpus
from selftrain.synth.render import RenderSettings, default_workers, render_plans
from selftrain.synth.sentences import assign_splits, load_sentences, unspoken_sentences
from selftrain.synth.voices import Voice, check_tools, tool_versions

__all__ = ["build_corpus", "CONFIG_STATE_FILE"]

CONFIG_STATE_FILE = ".synth_config.json"


def _check_state(out_dir: Path, config: SynthConfig) -> None:
    """Refuse to resume into a folder made with another config (its wavs would not match the plan).

    A key the saved config lacks (added to SynthConfig after the corpus was made) counts as its
    default, so existing corpora stay resumable when a new option is left at its default.
    """
    state = out_dir / CONFIG_STATE_FILE
    current = json.loads(json.dumps(config.to_dict()))
    if state.exists():
        defaults = json.loads(json.dumps(SynthConfig().to_dict()))
        previous = {**defaults, **json.loads(state.read_text(encoding="utf-8"))}
        if previous != current:
            changed = sorted(k for k in current if previous.get(k) != current.get(k))
            raise SynthError(
                f"{out_dir} holds a corpus made with another config (differs in {changed}); "
                "choose a new --out folder or delete it"
            )
    else:
        atomic_write_json(state, current)


def _lm_text(config: SynthConfig, lm_part: Sequence, plans: Mapping[str, Sequence[UttPlan]]) -> list[str]:
    """The LM share's sentences, plus every unspoken fortunes sentence when ``lm_text_unspoken``."""
    text = {s.text for s in lm_part}
    if config.lm_text_unspoken:
        spoken = {p.text for split_plans in plans.values() for p in split_plans}
        text.update(unspoken_sentences(config.fortunes_dir, spoken))
    return sorted(text)


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Delete half-written temporary wavs left by a killed run (finished wavs are never temporary)."""
    for stale in [*out_dir.glob("wav/*/.*.tmp"), *out_dir.glob("noise/.*.tmp")]:
        stale.unlink(missing_ok=True)


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="utt", disable=not enabled)


def _render(
    plans: Sequence[UttPlan],
    settings: RenderSettings,
    workers: int,
    desc: str,
    progress: bool,
    rendered: dict[str, int],
) -> dict[str, str]:
    """Render missing wavs under a progress bar; count in ``rendered[desc]`` how many were made now."""
    with _progress_bar(len(plans), desc, progress) as bar:
        done = sum(1 for p in plans if Path(settings.out_dir, p.wav).is_file())
        bar.update(done)
        failures = render_plans(plans, settings, workers, bar.update)
    rendered[desc] = len(plans) - done - len(failures)
    return failures


def _utterances(plans: Sequence[UttPlan], out_dir: Path, labeled: bool) -> list[Utterance]:
    rows = []
    for plan in plans:
        wav = out_dir / plan.wav
        if not wav.is_file():
            continue
        info = sf.info(str(wav))
        rows.append(
            Utterance(
                id=plan.id,
                wav=str(wav),
                duration=info.frames / info.samplerate,
                spk_id=plan.voice,
                reference=plan.text if labeled else None,
                extra={"condition": plan.condition, "effects": plan.conditions.describe()},
            )
        )
    return rows


def _hours_by(rows: Sequence[Utterance], key) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for row in rows:
        totals[key(row)] += row.duration
    return {k: round(v / 3600.0, 4) for k, v in sorted(totals.items())}


def _write_outputs(
    out_dir: Path, plans: Mapping[str, Sequence[UttPlan]], lm_text: Sequence[str]
) -> dict[str, list[Utterance]]:
    rows = {split: _utterances(plans[split], out_dir, labeled=True) for split in SPLITS}
    for split in ("labeled", "dev", "test", "dev_source"):
        write_speechbrain_csv(rows[split], out_dir / f"{split}.csv")
    write_speechbrain_csv(rows["unlabeled"], out_dir / "unlabeled_reference.csv")
    unlabeled = [dataclasses.replace(u, reference=None) for u in rows["unlabeled"]]
    write_speechbrain_csv(unlabeled, out_dir / "unlabeled.csv")
    atomic_write_text(out_dir / "lm_text.txt", "".join(f"{line}\n" for line in lm_text))
    return rows


def _summary(
    config: SynthConfig,
    rows: Mapping[str, list[Utterance]],
    parts: Mapping[str, Sequence],
    failures: Mapping[str, str],
    plans: Mapping[str, Sequence[UttPlan]],
    run: dict[str, Any],
    num_lm: int,
) -> dict[str, Any]:
    by_id = {p.id: p for split_plans in plans.values() for p in split_plans}
    group = {p.id: p.group for p in by_id.values()}
    return {
        "selftrain_version": __version__,
        "seed": config.seed,
        "scale": config.scale,
        "counts": {s: len(rows[s]) for s in SPLITS},
        "hours": {s: round(sum(u.duration for u in rows[s]) / 3600.0, 4) for s in SPLITS},
        "hours_by_group": {s: _hours_by(rows[s], lambda u: group[u.id]) for s in SPLITS},
        "hours_by_condition": {s: _hours_by(rows[s], lambda u: u.extra["condition"]) for s in SPLITS},
        "hours_by_voice": {s: _hours_by(rows[s], lambda u: u.spk_id) for s in SPLITS},
        "sentences": {
            "lm_text": num_lm,
            **{
                s: {
                    "available": len(parts[s]),
                    "spoken": len({p.text for p in plans[s]}),
                    "reused": len(plans[s]) > len(parts[s]),
                }
                for s in SPLITS
            },
        },
        "failed": [
            {"id": k, "voice": by_id[k].voice if k in by_id else "", "error": v}
            for k, v in sorted(failures.items())
        ],
        "last_run": run,
        "tools": tool_versions(),
        "config": config.to_dict(),
    }


def build_corpus(
    config: SynthConfig, out_dir: str | Path, workers: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Synthesize the corpus described by ``config`` into ``out_dir`` and return the ``corpus.json`` summary.

    Resumable: wavs already present are kept; re-running with the same config completes the corpus
    and rewrites identical manifests. Raises :class:`~selftrain.synth.errors.MissingToolError` when a
    synthesizer, sox or the fortunes are not installed, :class:`~selftrain.errors.ConfigError` for a
    bad config and :class:`SynthError` when ``out_dir`` holds a corpus made with another config.
    """
    start = time.monotonic()
    config.validate()
    out = Path(out_dir)
    voices = [Voice.parse(v) for v in [*config.known_voices, *config.unseen_voices]]
    check_tools(voices)
    sentences = load_sentences(config.fortunes_dir, config.min_words, config.max_words,
                               max_vocabulary=config.max_vocabulary)
    parts = assign_splits(sentences, config.text_shares, config.split_salt)
    plans = plan_corpus(config, parts)
    out.mkdir(parents=True, exist_ok=True)
    _check_state(out, config)
    _remove_stale_temporaries(out)
    workers = workers or default_workers()
    babble = plan_babble(config, parts["lm"])
    settings = RenderSettings(str(out), config.sample_rate, config.seed)
    rendered: dict[str, int] = {}
    failures = _render(babble, settings, workers, "babble", progress, rendered)
    babble_wavs = tuple(str(out / p.wav) for p in babble if (out / p.wav).is_file())
    if len(babble_wavs) < config.babble_talkers[1]:
        raise SynthError(
            f"only {len(babble_wavs)} babble clips could be made: {sorted(failures.values())[:1]}"
        )
    settings = RenderSettings(str(out), config.sample_rate, config.seed, babble_wavs, config.babble_talkers)
    all_plans = [p for split in SPLITS for p in plans[split]]
    failures.update(_render(all_plans, settings, workers, "synth", progress, rendered))
    lm_text = _lm_text(config, parts["lm"], plans)
    rows = _write_outputs(out, plans, lm_text)
    # The last invocation only: a resumed run renders fewer wavs (all of them when started afresh).
    run = {"wall_seconds": round(time.monotonic() - start, 1), "workers": workers, "wavs_rendered": rendered}
    summary = _summary(config, rows, parts, failures, plans, run, len(lm_text))
    atomic_write_json(out / "corpus.json", summary)
    return summary
