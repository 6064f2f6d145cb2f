"""``selftrain select`` end to end on small hypothesis files (no audio needed)."""

from __future__ import annotations

import csv
import json

from click.testing import CliRunner

from selftrain.cli import main
from selftrain.io import read_jsonl
from selftrain.record import Hypothesis, Utterance, Word


def _record(uid: str, text: str, conf: float, reference: str) -> dict:
    words = [Word(w, 2 * i, 2 * i + 1, {"entropy_tsallis_exp": conf}) for i, w in enumerate(text.split())]
    hyp = Hypothesis("beam", text, words, scores={"entropy_tsallis_exp": conf})
    return Utterance(uid, f"/audio/{uid}.wav", 2.0, reference=reference, hypotheses=[hyp]).to_dict()


def _files(tmp_path):
    rows = [_record("u1", "the cat sat", 0.95, "the cat sat"), _record("u2", "a dog ran", 0.3, "the dog ran"),
            _record("u3", "go go go go", 0.9, "go home"), _record("u4", "it is fine", 0.8, "it is fine")]
    teacher = tmp_path / "beam.jsonl"
    teacher.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    other = tmp_path / "ext.jsonl"
    other.write_text("".join(json.dumps({"id": i, "text": t}) + "\n"
                             for i, t in [("u1", "the cat sat"), ("u2", "the dog ran"), ("u4", "it is fine")]),
                     encoding="utf-8")
    return teacher, other


def test_select_one_teacher_with_threshold(tmp_path):
    teacher, _ = _files(tmp_path)
    out = tmp_path / "sel"
    result = CliRunner().invoke(main, ["select", "--hyps", str(teacher), "--out", str(out), "--threshold", "0.5"])
    assert result.exit_code == 0, result.output
    assert "kept 2/4" in result.output and "repeat: 1" in result.output
    with open(out / "selected.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["ID"], r["wrd"], r["confidence"]) for r in rows] == [("u1", "the cat sat", "0.9500"),
                                                                    ("u4", "it is fine", "0.8000")]
    decisions = {d["id"]: d["decision"] for d in read_jsonl(out / "decisions.jsonl")}
    assert decisions["u2"]["kept"] is False and decisions["u2"]["reason"].startswith("threshold:")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pseudo_label_quality"]["kept"]["wer"] == 0.0
    # word figures over all 13 hypothesis words (3 + 3 + 4 + 3); u2's "a" and three of u3's "go" are wrong
    detection = summary["word_detection"]["entropy_tsallis_exp"]
    assert detection["count"] == 13 and detection["error_rate"] == 4 / 13


def test_select_two_teachers_reports_missing_ids_and_uses_agreement(tmp_path):
    teacher, other = _files(tmp_path)
    out = tmp_path / "sel2"
    result = CliRunner().invoke(main, ["select", "--hyps", str(teacher), "--hyps", str(other), "--out", str(out),
                                       "--agreement", "0.9"])
    assert result.exit_code == 0, result.output
    assert "ext.jsonl: 1 utterance(s) missing (u3)" in result.output
    decisions = {d["id"]: d for d in read_jsonl(out / "decisions.jsonl")}
    assert decisions["u2"]["decision"]["reason"].startswith("agreement:")
    assert decisions["u1"]["decision"]["kept"] and decisions["u1"]["hypotheses"][-1]["teacher"] == "rover"


def test_fit_calibration_then_select_with_it(tmp_path):
    teacher, _ = _files(tmp_path)
    cal = tmp_path / "cal.json"
    result = CliRunner().invoke(main, ["select", "--hyps", str(teacher), "--fit-calibration", str(cal)])
    assert result.exit_code == 0, result.output
    assert "written to" in result.output and json.loads(cal.read_text())["word"]
    out = tmp_path / "sel3"
    result = CliRunner().invoke(main, ["select", "--hyps", str(teacher), "--out", str(out), "--calibration", str(cal),
                                       "--threshold", "0.5"])
    assert result.exit_code == 0, result.output
    decisions = {d["id"]: d["decision"] for d in read_jsonl(out / "decisions.jsonl")}
    assert decisions["u1"]["kept"] and not decisions["u2"]["kept"]
    # as in `selftrain run`: the default method ranks by the calibration's combination of every score
    assert "utterance" in json.loads(cal.read_text())["combiners"]
    assert decisions["u1"]["policy"].startswith("combined:threshold=0.5")
    explicit = tmp_path / "sel4"
    result = CliRunner().invoke(main, ["select", "--hyps", str(teacher), "--out", str(explicit), "--calibration",
                                       str(cal), "--threshold", "0.5", "--method", "entropy_tsallis_exp"])
    assert result.exit_code == 0, result.output
    policies = {d["decision"]["policy"] for d in read_jsonl(explicit / "decisions.jsonl")}
    assert policies == {"entropy_tsallis_exp:threshold=0.5+sanity"}


def test_select_requires_out_and_reports_bad_files(tmp_path):
    teacher, _ = _files(tmp_path)
    assert CliRunner().invoke(main, ["select", "--hyps", str(teacher)]).exit_code == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no id"}\n')
    result = CliRunner().invoke(main, ["select", "--hyps", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "needs an 'id'" in result.output


def test_select_with_dust_samples(tmp_path):
    def line(uid: str, teacher: str, text: str) -> str:
        words = [Word(w, i, i + 1, {"entropy_tsallis_exp": 0.9}) for i, w in enumerate(text.split())]
        hyp = Hypothesis(teacher, text, words, scores={"entropy_tsallis_exp": 0.9})
        return json.dumps(Utterance(uid, f"/a/{uid}.wav", 1.0, hypotheses=[hyp]).to_dict()) + "\n"

    det = tmp_path / "det.jsonl"
    det.write_text(line("u1", "base", "one two three") + line("u2", "base", "four five six"))
    drop = tmp_path / "drop.jsonl"
    drop.write_text(line("u1", "base:dropout1", "one two three") + line("u2", "base:dropout1", "for fife six"))
    out = tmp_path / "dust"
    result = CliRunner().invoke(main, ["select", "--hyps", str(det), "--hyps", str(drop), "--out", str(out),
                                       "--dust-reference", "base", "--dust-threshold", "0.3", "--label-source", "base"])
    assert result.exit_code == 0, result.output
    decisions = {d["id"]: d for d in read_jsonl(out / "decisions.jsonl")}
    assert decisions["u1"]["decision"]["kept"] and decisions["u1"]["agreement"]["dust_max_wer"] == 0.0
    assert decisions["u2"]["decision"]["reason"] == "dust: max dropout WER 0.667 > 0.3"


def test_select_takes_the_speaking_rate_bounds_from_a_transcribed_manifest(tmp_path):
    from selftrain.data.manifest import write_speechbrain_csv

    teacher, _ = _files(tmp_path)
    labeled = tmp_path / "labeled.csv"  # "the cat sat" (11 chars) in 1.6-2.27 s: 4.84-6.9 chars/s
    write_speechbrain_csv([Utterance(f"l{i}", "l.wav", 1.6 + 0.028 * i, reference="the cat sat") for i in range(25)], labeled)
    out = tmp_path / "sel_rate"
    result = CliRunner().invoke(main, ["select", "--hyps", str(teacher), "--out", str(out), "--rate-from", str(labeled),
                                       "--rate-quantile", "0"])
    assert result.exit_code == 0, result.output
    assert "speaking-rate bounds from" in result.output and "4.84-6.88 chars/s" in result.output
    decisions = {d["id"]: d["decision"]["reason"] for d in read_jsonl(out / "decisions.jsonl")}
    assert decisions["u2"].startswith("rate: 4.5 chars/s outside [4.84, 6.88]")  # "a dog ran" in 2 s
    assert decisions["u1"].startswith("kept") and decisions["u4"].startswith("kept")
    too_few = tmp_path / "few.csv"
    write_speechbrain_csv([Utterance("l", "l.wav", 2.0, reference="the cat sat")], too_few)
    refused = CliRunner().invoke(main, ["select", "--hyps", str(teacher), "--out", str(tmp_path / "x"), "--rate-from", str(too_few)])
    assert refused.exit_code != 0 and "at least 20 transcribed utterances" in refused.output


def test_the_old_name_of_label_source_still_works_with_a_warning(tmp_path):
    teacher, other = _files(tmp_path)
    labels = {}
    for option in ("--label-source", "--teacher"):
        out = tmp_path / option.strip("-")
        result = CliRunner().invoke(main, ["select", "--hyps", str(teacher), "--hyps", str(other), "--out", str(out),
                                           option, "ext"])
        assert result.exit_code == 0, result.output
        assert ("--teacher is deprecated: use --label-source" in result.output) == (option == "--teacher")
        labels[option] = {d["id"]: d["pseudo_label"] for d in read_jsonl(out / "decisions.jsonl")}
    assert labels["--teacher"] == labels["--label-source"] and labels["--teacher"]["u2"] == "the dog ran"
    result = CliRunner().invoke(main, ["select", "--hyps", str(teacher), "--out", str(tmp_path / "both"),
                                       "--teacher", "ext", "--label-source", "beam"])
    assert result.exit_code == 2 and "give one of them" in result.output
