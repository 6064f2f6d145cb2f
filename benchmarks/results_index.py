"""Write benchmarks/results/INDEX.md: every results file with its command, date, machine and question.

The command, date and machine are read from each JSON results file (newer scripts record all three;
older ones only the command, and their date is that of the commit that recorded them, marked as
such). The question each file answers and the page of the research log that discusses it are kept
here, in :data:`QUESTIONS`: a results file missing from it fails the index test.

    python benchmarks/results_index.py            # rewrite the index
    python benchmarks/results_index.py --check    # exit 1 when the committed index is stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
INDEX = RESULTS / "INDEX.md"
EXPERIMENTS = "../../docs/experiments"

# The maintained benchmarks; the one-off analyses of a finished experiment are in benchmarks/analysis/.
MAINTAINED = ("decode_speed", "train_step", "stream_memory", "pseudo_label_quality", "self_training")

# results file (no suffix) -> (question, research-log page, date of the commit that recorded it when
# the file itself does not say).
QUESTIONS: dict[str, tuple[str, str, str]] = {
    "decode_speed": ("How fast is LM decoding, against greedy and a naive loop?", "2026-11-23-decode-speed", "2026-11-23"),
    "train_step_cpu": ("What do the SSL objectives and loss combinations cost per step?", "2026-11-23-train-step", ""),
    "stream_memory": ("Does decoding's and selection's memory grow with the unlabeled set?", "", ""),
    "pseudo_label_quality": ("How well does each confidence score rank the pseudo-labels?",
                             "2026-11-23-pseudo-label-quality", "2026-11-23"),
    "pseudo_label_quality_converged_teacher": ("Do peer, LM and context features make word confidence better?",
                                               "2026-12-02-word-confidence-features", "2026-12-02"),
    "external_teachers": ("Are Whisper or PocketSphinx better labelers than the CTC teacher?",
                          "2026-11-23-external-teachers", "2026-11-23"),
    "self_training_earlier_run": ("Does self-training beat a labeled-only control (first run with converged teachers)?",
                                  "2026-12-02-earlier-benchmark-run", ""),
    "self_training": ("Does self-training beat a labeled-only control (default scale)?",
                      "2026-12-02-self-training-benchmark", ""),
    "segment_quality": ("How much audio and how clean are the labels for each segment setting?",
                        "2026-12-02-segments", "2026-12-02"),
    "segment_edges": ("What does cutting a run of words out of its utterance do to the audio?",
                      "2026-12-02-segments", "2026-12-02"),
    "self_training_followup": ("Is it the label errors or the choice of audio that the pseudo-labels cost?",
                               "2026-12-03-label-errors-or-audio", ""),
    "lm_corrections_followup": ("Which pseudo-label words did the LM change, and are they right (small LM)?",
                                "2026-12-03-strong-lm", "2026-12-03"),
    "self_training_strong_lm": ("Does a stronger decoding LM make the pseudo-labels worth more?", "2026-12-03-strong-lm", ""),
    "lm_corrections_strong_lm": ("Which pseudo-label words did the LM change, and are they right (strong LM)?",
                                 "2026-12-03-strong-lm", "2026-12-03"),
    "self_training_strong_lm_1500": ("Does a teacher trained on more labeled audio make labels that help?",
                                     "2026-12-03-more-labeled-audio", ""),
    "lm_corrections_strong_lm_1500": ("Which pseudo-label words did the LM change (1.25 h labeled)?",
                                      "2026-12-03-more-labeled-audio", "2026-12-03"),
    "self_training_strong_lm_1500_chain": ("Do later generations keep gaining, and what stops the deletion drift?",
                                           "2026-12-03-three-generations", ""),
    "relabel_quality_strong_lm_1500_chain": ("Does each student label the unlabeled audio better than its teacher?",
                                             "2026-12-03-three-generations", "2026-12-03"),
    "relabel_quality_strong_lm_1500_chain_seed1": ("The same, second chain", "2026-12-03-three-generations", "2026-12-03"),
    "relabel_quality_strong_lm_1500_chain_seed2": ("The same, third chain", "2026-12-03-three-generations", "2026-12-03"),
    "error_kinds_strong_lm_1500_chain": ("Which errors grow over generations, and on which audio?",
                                         "2026-12-03-speaking-rate-bounds", "2026-12-03"),
    "self_training_noisy_teacher": ("Does a teacher trained with stronger augmentation make better labels?",
                                    "2026-12-03-noisier-teacher", ""),
    "self_training_ensemble_teacher": ("Do two teachers labeling together, and a length-ratio bound, help?",
                                       "2026-12-03-teacher-ensemble", ""),
    "acceptance_rules": ("Which acceptance test keeps students that are worse than their teachers on test?",
                         "2026-12-07-acceptance-tests", ""),
    "length_ratio_ensemble_teacher": ("Are the labels the LM made shorter the ones that lost words?",
                                      "2026-12-03-teacher-ensemble", "2026-12-03"),
    "error_kinds_ensemble_teacher": ("Which errors grow over generations with the ensemble's labels?",
                                     "2026-12-03-teacher-ensemble", "2026-12-03"),
    "self_training_tuned_decoding": ("Does tuning each model's decoder settings on dev help self-training?",
                                     "2026-12-03-tuned-decoding", ""),
    "self_training_small_vocab": ("Is the teacher's weakness what keeps the pseudo-labels from paying?",
                                  "2026-12-04-small-vocabulary", ""),
    "self_training_pretrained_10min": ("Does self-training pay with a pretrained encoder and 10 min of labels "
                                       "(students fine-tuned from the teacher)?", "2026-12-06-pretrained-encoder", ""),
    "self_training_pretrained_10min_fresh": ("Does self-training pay with a pretrained encoder and 10 min of labels "
                                             "(fresh students, decoders tuned on dev; continuous arms, the best-EMA "
                                             "export over three seeds)?", "2026-12-06-best-ema-continuous", ""),
    "self_training_pretrained_10min_lmdev": ("With a pretrained encoder and 10 min of labels, do checkpoints chosen on "
                                             "LM-decoded dev WER let self-training pay?", "2026-12-06-lm-checkpoints-continuous", ""),
    "self_training_pretrained_10min_rebuilt": ("With the 10-minute corpus and teacher built again, does the best-EMA "
                                               "continuous run still beat its labeled-only variant, and do stricter "
                                               "or looser label filters or a noisier student help?",
                                               "2026-12-07-noisier-student-10min", ""),
    "self_training_pretrained_10min_pool40": ("Does four times the unlabeled audio keep the continuous run improving "
                                              "for longer?", "2026-12-06-pool-size-and-filtering", ""),
    "self_training_pretrained_30min": ("With a pretrained encoder and 30 min of labels, how much does the best-EMA "
                                       "continuous run gain over its labeled-only variant, the labeled-only "
                                       "control chain and three offline generations?",
                                       "2026-12-06-30min-controls", ""),
    "self_training_pretrained_30min_budget": ("Does the 30-minute scale's headline comparison (teacher, best-EMA "
                                              "continuous run, its labeled-only variant, oracle) run from nothing "
                                              "within an hour on 2 cores?", "2026-12-06-one-hour-scale", ""),
    "self_training_pretrained_1h": ("With a pretrained encoder and an hour of labels, does the best-EMA continuous "
                                    "run still beat its labeled-only variant?", "2026-12-06-one-hour-scale", ""),
    "self_training_continuous": ("On the from-scratch default scale, does the best-EMA continuous run do at least as well "
                                 "as three offline generations, in no more wall time?",
                                 "2026-12-07-continuous-from-scratch", ""),
    "decode_speed_whisper_tiny": ("How much does LM decoding cost over greedy with the pretrained encoder?",
                                  "2026-12-06-pretrained-encoder", ""),
}


def _meta(data: dict[str, Any]) -> tuple[str, str, str]:
    """(command, date, machine) as the results file records them ('' when it does not)."""
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    command = data.get("command") or meta.get("command") or ""
    date = meta.get("date") or data.get("date") or data.get("started") or ""
    machine = meta.get("machine") or data.get("machine") or data.get("platform") or ""
    cpus = meta.get("cpus") or data.get("cpu_count")
    if machine and cpus and "CPU" not in machine:
        machine = f"{machine}, {cpus} CPU cores"
    return command, date, machine


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _row(name: str, data: dict[str, Any], results_dir: Path) -> str:
    command, date, machine = _meta(data)
    question, page, fallback_date = QUESTIONS.get(name, ("(not registered in benchmarks/results_index.py)", "", ""))
    if not date:
        date = f"{fallback_date} (commit)" if fallback_date else "not recorded"
    files = f"[`{name}.json`]({name}.json)" + (f", [md]({name}.md)" if (results_dir / f"{name}.md").exists() else "")
    link = f"[{page}]({EXPERIMENTS}/{page}.md)" if page else ""
    return (f"| {files} | {_cell(question)} | {link} | {_cell(date)} | {_cell(machine or 'not recorded')} "
            f"| `{_cell(command)}` |")


def _glance(results: dict[str, dict[str, Any]]) -> list[str]:
    """The self-training runs with a labeled-only control and an oracle: their headline figures."""
    out = ["| results file | date | labeled / unlabeled h | teacher | self-training, final (generation) "
           "| labeled-only control | oracle | gap recovery |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, data in results.items():
        analysis = data.get("analysis") or {}
        if not name.startswith("self_training") or analysis.get("labeled_only_test_wer") is None \
                or analysis.get("oracle_test_wer") is None:
            continue
        hours = (data.get("corpus") or {}).get("hours", {})
        _, date, _ = _meta(data)
        out.append(f"| [`{name}`]({name}.md) | {date} | {hours.get('labeled', 0):.2f} / {hours.get('unlabeled', 0):.2f} "
                   f"| {analysis['supervised_test_wer']:.3f} | {analysis['final_test_wer']:.3f} "
                   f"({analysis['final_generation']}) | {analysis['labeled_only_test_wer']:.3f} "
                   f"| {analysis['oracle_test_wer']:.3f} | {analysis['gap_recovery']:.3f} |")
    return out


def _pooled(results: dict[str, dict[str, Any]]) -> list[str]:
    """The settings that ran with several seeds (each file's ``seeds``), against their controls."""
    out = ["| results file | setting | seeds | mean test WER | control mean | gap recovery | vs control (95 %) "
           "| own control mean | gap recovery vs own |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, data in results.items():
        for entry in data.get("seeds") or []:
            if entry.get("control_mean_test_wer") is None:
                continue
            versus, own = entry["vs_control"], entry.get("own_control_mean_test_wer")
            out.append(f"| [`{name}`]({name}.md) | {entry['setting']} | {', '.join(map(str, entry['seeds']))} "
                       f"| {entry['mean_test_wer']:.3f} | {entry['control_mean_test_wer']:.3f} | {_fmt3(entry.get('gap_recovery'))} "
                       f"| {versus['difference']:+.4f} [{versus['low']:+.4f}, {versus['high']:+.4f}] "
                       f"| {_fmt3(own)} | {_fmt3(entry.get('own_gap_recovery'))} |")
    return out if len(out) > 2 else []


def _continuous(results: dict[str, dict[str, Any]]) -> list[str]:
    """Each continuous run that ran beside its own labeled-only variant (the same run without
    unlabeled audio): the comparison of scales whose other controls were left out."""
    out = ["| results file | run | test WER | teacher | own control | oracle | gap recovery vs own | "
           "vs own control (95 %) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, data in results.items():
        analysis = data.get("analysis") or {}
        for arm in (analysis.get("continuous") or {}).get("arms", []):
            interval, own = arm.get("vs_own_labeled_only"), _own_control_wer(data, arm["name"])
            if arm.get("own_gap_recovery") is None or not interval or own is None:
                continue
            out.append(f"| [`{name}`]({name}.md) | {arm['name'].split(':', 1)[-1]} | {arm['test_wer']:.3f} "
                       f"| {_fmt3(analysis.get('supervised_test_wer'))} | {own:.3f} | {_fmt3(analysis.get('oracle_test_wer'))} "
                       f"| {arm['own_gap_recovery']:.3f} | [{interval[0]:+.4f}, {interval[1]:+.4f}] |")
    return out if len(out) > 2 else []


def _own_control_wer(data: dict[str, Any], arm: str) -> float | None:
    """The final test WER of the run's own labeled-only variant (its rows in the file), if it ran."""
    from _seeds import own_control_arm  # beside this script; imported here, as only this table needs it

    rows = data["arms"].get(own_control_arm(arm)) or []
    return rows[-1]["test_wer"] if rows else None


def _fmt3(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def render(results_dir: Path = RESULTS) -> str:
    """The Markdown of the index, from the JSON results files in ``results_dir``."""
    results = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(results_dir.glob("*.json"))}
    out = ["# Results index", "",
           "Generated by `python benchmarks/results_index.py` from the JSON results files; do not edit by hand.",
           "Dates marked \"(commit)\" are those of the commit that recorded a file that does not hold its",
           "own date; \"not recorded\" means the file does not say (its research-log page describes the",
           "run). Every recorded run was on CPU; none used a GPU.", "",
           "Grouped by the script that wrote them: the maintained benchmarks first, then the one-off",
           "analyses (`benchmarks/analysis/`).", ""]
    by_script: dict[str, list[str]] = {}
    for name, data in results.items():
        match = re.search(r"benchmarks/((?:analysis/)?\w+)\.py", _meta(data)[0])
        by_script.setdefault(match.group(1) if match else "(no command)", []).append(name)
    order = [s for s in MAINTAINED if s in by_script] + sorted(s for s in by_script if s not in MAINTAINED)
    for script in order:
        kind = "maintained benchmark" if script in MAINTAINED else "one-off analysis"
        out += [f"## {script}.py ({kind})", "",
                "| files | question | research log | date | machine | command |", "| --- | --- | --- | --- | --- | --- |"]
        out += [_row(name, results[name], results_dir) for name in by_script[script]] + [""]
    out += ["## Self-training runs at a glance", "",
            "Test WER (300 test utterances) of the runs that have a labeled-only control and an oracle chain,",
            "from each file's `analysis` (seed-0 chains; the final model is the last accepted one). Gap",
            "recovery is (control - final) / (control - oracle).", ""]
    out += _glance(results)
    pooled = _pooled(results)
    if pooled:
        out += ["", "Settings run with several seeds, pooled (each file's \"Seeds pooled\" section): mean of the final",
                "models, gap recovery from the means, one paired interval over the seeds against the labeled-only",
                "control; own control: the same training without unlabeled audio.", "", *pooled]
    continuous = _continuous(results)
    if continuous:
        out += ["", "Continuous runs against their own labeled-only variant (the same run, step for step, without",
                "unlabeled audio), one row per seed (each file's \"Continuous schedule\" section); gap recovery",
                "is (own control - run) / (own control - oracle).", "", *continuous]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed index is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not INDEX.is_file() or INDEX.read_text(encoding="utf-8") != text:
            print("benchmarks/results/INDEX.md is stale: run python benchmarks/results_index.py", file=sys.stderr)
            return 1
        return 0
    INDEX.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
