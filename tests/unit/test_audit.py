"""Audits on constructed records whose right answers are known."""

import json

import pytest
from click.testing import CliRunner

from selftrain.audit import load_audit, recommend_threshold, run_audit, score_names, sweep, write_audit
from selftrain.cli import main
from selftrain.io import JsonlWriter
from selftrain.record import Hypothesis, Utterance, Word


def _utt(i: int, reference: str, hypothesis: str, score: float, word_scores=None, duration=3600.0) -> Utterance:
    words = [Word(w, 2 * k, 2 * k + 1, {"conf": s}) for k, (w, s) in enumerate(zip(hypothesis.split(), word_scores or [score] * 10, strict=False))]
    hyp = Hypothesis(teacher="t", text=hypothesis, words=words, scores={"conf": score}, num_frames=20)
    return Utterance(id=f"u{i}", wav=f"/x/u{i}.wav", duration=duration, reference=reference, hypotheses=[hyp],
                     agreement={"pairwise": score})


@pytest.fixture
def records():
    # Four utterances of four words: the more confident, the fewer errors.
    return [
        _utt(0, "a b c d", "a b c d", 0.9, [0.95, 0.9, 0.9, 0.85]),
        _utt(1, "a b c d", "a b c x", 0.7, [0.9, 0.8, 0.8, 0.2]),
        _utt(2, "a b c d", "a x c y", 0.5, [0.9, 0.1, 0.8, 0.2]),
        _utt(3, "a b c d", "x y z w", 0.1, [0.1, 0.2, 0.1, 0.1]),
    ]


def test_score_names_cover_hypothesis_and_agreement_scores(records):
    assert score_names(records) == ["agreement:pairwise", "conf"]


def test_sweep_measures_the_kept_part(records):
    points = sweep(records, "conf", fractions=(1.0, 0.75, 0.5, 0.25))
    assert [p.kept for p in points] == [4, 3, 2, 1]
    assert [p.threshold for p in points] == [0.1, 0.5, 0.7, 0.9]
    assert [p.wer for p in points] == pytest.approx([7 / 16, 3 / 12, 1 / 8, 0.0])
    assert [p.kept_hours for p in points] == [4.0, 3.0, 2.0, 1.0]
    assert points[0].estimated_wer is None  # no calibrated scores


def test_sweep_error_rates_equal_jiwer_on_each_kept_subset():
    import random

    import jiwer

    rng = random.Random(3)
    vocabulary = ["a", "bb", "ccc", "dd", "e"]
    records = []
    for i in range(60):
        reference = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 7)))
        words = reference.split()
        hypothesis = " ".join(w if rng.random() > 0.3 else rng.choice(vocabulary) for w in words[: rng.randint(0, len(words) + 1)])
        records.append(_utt(i, reference, hypothesis, rng.random()))
    records.append(_utt(60, "", "x y", 0.99))  # an empty reference counts no words, as in jiwer
    fractions = (1.0, 0.7, 0.35, 0.1)
    for point in sweep(records, "conf", fractions=fractions):
        kept = sorted(records, key=lambda u: -u.hypotheses[0].scores["conf"])[: point.kept]
        pairs = [(u.reference, u.hypotheses[0].text) for u in kept if u.reference]
        refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
        assert point.wer == pytest.approx(jiwer.wer(refs, hyps))
        assert point.cer == pytest.approx(jiwer.cer(refs, hyps))


def test_estimated_wer_from_calibrated_word_scores(records):
    for utt in records:
        for word in utt.hypotheses[0].words:
            word.scores["conf_calibrated"] = 0.75
    (point,) = sweep(records, "conf", fractions=(1.0,))
    assert point.estimated_wer == pytest.approx(0.25)


def test_recommendation_keeps_most_data_under_the_target(records):
    points = sweep(records, "conf", fractions=(1.0, 0.75, 0.5, 0.25))
    assert recommend_threshold(points, 0.25).kept == 3
    assert recommend_threshold(points, 0.0).kept == 1
    assert recommend_threshold(sweep(records[3:], "conf", fractions=(1.0,)), 0.5) is None


def test_run_audit_word_quality_and_report_files(tmp_path, records):
    result = run_audit(records, target_wer=0.2, label="gen_001")
    conf = result.method("conf")
    assert conf.word_metrics["auroc"] > 0.9  # low word scores are exactly the wrong words
    assert conf.word_metrics["count"] == 16
    assert sum(b["count"] for b in conf.reliability) == 16
    assert result.best_method().name in {"conf", "agreement:pairwise"}
    written = write_audit(result, tmp_path, records, previous=[result])
    names = {p.name for p in written}
    assert {"audit.json", "audit.md", "yield_vs_wer.png", "reliability.png", "score_histograms.png", "drift.png"} <= names
    for png in (p for p in written if p.suffix == ".png"):
        assert png.read_bytes()[:4] == b"\x89PNG"
    markdown = (tmp_path / "audit.md").read_text()
    assert "Recommendation:" in markdown and "| conf |" in markdown
    again = load_audit(tmp_path)
    assert again.method("conf").recommended == conf.recommended


def test_cli_audit_with_and_without_references(tmp_path, records):
    hyps = tmp_path / "hyps.jsonl"
    refs = {u.id: u.reference for u in records}
    with JsonlWriter(hyps) as out:
        for utt in records:
            utt.reference = None  # unlabeled audio: references come from a separate manifest
            out.write(utt.to_dict())
    manifest = tmp_path / "ref.csv"
    manifest.write_text("ID,duration,wav,spk_id,wrd\n" + "".join(f"{k},1.0,/x/{k}.wav,s,{v}\n" for k, v in refs.items()))
    runner = CliRunner()
    result = runner.invoke(main, ["audit", "--hyps", str(hyps), "--reference", str(manifest), "--out", str(tmp_path / "a"),
                                  "--target-wer", "0.3"])
    assert result.exit_code == 0, result.output
    assert "references found for 4 of 4" in result.output and "recommended:" in result.output
    data = json.loads((tmp_path / "a" / "audit.json").read_text())
    assert data["with_reference"] == 4
    result = runner.invoke(main, ["audit", "--hyps", str(hyps), "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "no threshold reaches the target WER" in result.output  # nothing measured, nothing calibrated
    assert (tmp_path / "b" / "audit.md").exists()


def test_cli_audit_rejects_a_file_that_is_not_records(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"nothing": 1}\n')
    result = CliRunner().invoke(main, ["audit", "--hyps", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "not a file of selftrain records" in result.output
