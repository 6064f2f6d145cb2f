"""The streamed selection writes the very files of the in-memory one, for every kind of policy."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from selftrain.agreement import AgreementConfig
from selftrain.agreement.stream import MergedTeachers
from selftrain.agreement.teachers import merge_teachers
from selftrain.confidence.calibrate import fit_calibration
from selftrain.errors import ManifestError
from selftrain.record import Hypothesis, Utterance, Word
from selftrain.select import SelectConfig
from selftrain.select.config import SegmentConfig
from selftrain.select.pipeline import run_selection
from selftrain.select.stream import run_selection_stream

VOCAB = ["the", "cat", "sat", "on", "a", "mat", "dog", "log", "ran", "home"]
SCORE = "entropy_tsallis_exp"


def _hypothesis(teacher: str, rng: random.Random, text: str) -> Hypothesis:
    words = []
    for i, word in enumerate(text.split()):
        words.append(Word(word, 3 * i, 3 * i + 2, {SCORE: round(rng.random(), 2), "max_prob": round(rng.random(), 2)}))
    scores = {SCORE: round(rng.choice([0.5, rng.random()]), 2), "max_prob": round(rng.random(), 2)}  # ties on 0.5
    return Hypothesis(teacher, text, words, scores=scores, num_frames=3 * len(words) + 2)


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(rng.randint(0, 6)))


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    rng = random.Random(7)
    root = tmp_path_factory.mktemp("stream_select")
    ids = [f"u{i:03d}" for i in range(80)]
    references = {i: _sentence(rng) for i in ids}
    beam, greedy, external = [], [], []
    for utt_id in ids:
        truth = references[utt_id]
        beam.append(Utterance(utt_id, "", 0.0, hypotheses=[_hypothesis("beam", rng, truth if rng.random() < 0.6
                                                                       else _sentence(rng))]).to_dict())
        if rng.random() < 0.9:
            greedy.append(Utterance(utt_id, "", 0.0, hypotheses=[_hypothesis("greedy", rng, _sentence(rng))]).to_dict())
        if rng.random() < 0.8:
            external.append({"id": utt_id, "text": truth if rng.random() < 0.5 else _sentence(rng),
                             "confidence": round(rng.random(), 2)})
    greedy.append(Utterance("extra1", "", 0.0, hypotheses=[_hypothesis("greedy", rng, "the cat")]).to_dict())
    rng.shuffle(external)  # another system's file, in its own order
    lines = ["ID,duration,wav,spk_id,wrd"]
    for n, utt_id in enumerate(ids[:-3]):  # three ids without a manifest row
        wrd = references[utt_id] if n % 3 else ""
        lines.append(f"{utt_id},{rng.uniform(0.5, 4.0):.2f},/audio/{utt_id}.wav,s{n % 4},{wrd}")
        if n % 17 == 5:
            lines.append(f"{utt_id},9.00,/audio/again.wav,s0,")  # a repeated id: the first row is used
    lines.append("nohyp1,1.0,/audio/nohyp1.wav,s1,")
    manifest = root / "unlabeled.csv"
    # Bytes that are not UTF-8: that utterance is dropped with reason "encoding", outside the policy.
    manifest.write_bytes(("\n".join(lines) + "\n").encode().replace(b"/audio/u010.wav", b"/audio/u010\xff.wav"))
    files = [_write(root / "beam.jsonl", beam), _write(root / "greedy.jsonl", greedy), _write(root / "ext.jsonl", external)]
    utterances, _ = merge_teachers(files)
    labeled = [replace(u, reference=references.get(u.id)) for u in utterances]
    calibration = root / "calibration.json"
    fit_calibration(labeled, teacher="beam").save(calibration)
    return {"root": root, "files": files, "manifest": manifest, "calibration": calibration}


CONFIGS = {
    "threshold": SelectConfig(threshold=0.4),
    "keep_fraction": SelectConfig(keep_fraction=0.5),
    "agreement_product": SelectConfig(keep_fraction=0.6, rank_by="product", agreement_threshold=0.2),
    "segments_whole": SelectConfig(threshold=0.6, segments=SegmentConfig(enabled=True, context="whole", threshold=0.3,
                                                                        min_words=1)),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("calibrated", [False, True])
def test_streamed_selection_writes_the_same_files(inputs, tmp_path, name, calibrated):
    config = CONFIGS[name]
    calibration = inputs["calibration"] if calibrated else None
    kwargs = {"config": config, "agreement": AgreementConfig(), "calibration": calibration, "manifest": inputs["manifest"]}
    held = run_selection(inputs["files"], tmp_path / "held", **kwargs)
    streamed = run_selection_stream(inputs["files"], tmp_path / "streamed", **kwargs)
    for key in ("csv", "decisions", "summary"):
        assert streamed.paths[key].read_bytes() == held.paths[key].read_bytes(), key
    assert streamed.warnings == held.warnings and len(held.warnings) == 6
    assert sorted(p.name for p in (tmp_path / "streamed").iterdir()) == sorted(p.name for p in (tmp_path / "held").iterdir())
    kept = sum(u.decision.kept for u in held.utterances if u.decision)
    assert streamed.summary["kept"] == kept and 0 < kept < len(held.utterances)
    assert streamed.summary["reasons"]["encoding"] == 1


def test_merged_teachers_stream_in_first_appearance_order(inputs):
    held, report = merge_teachers(inputs["files"])
    streamed = MergedTeachers(inputs["files"])
    assert [u.to_dict() for u in streamed] == [u.to_dict() for u in held]
    assert streamed.report() == report and len(streamed) == len(held)


def test_a_repeated_id_in_one_file_is_refused_before_any_work(tmp_path):
    row = Utterance("a", "", 0.0, hypotheses=[Hypothesis("t", "x")]).to_dict()
    path = _write(tmp_path / "h.jsonl", [row, row])
    with pytest.raises(ManifestError, match=r"h.jsonl:2: duplicate utterance id 'a'"):
        MergedTeachers([path])


@pytest.mark.parametrize("teacher", [None, "greedy"])
def test_audit_from_a_score_table_equals_the_audit_of_the_records(inputs, tmp_path, teacher):
    from selftrain.audit import run_audit, write_audit
    from selftrain.audit.inputs import attach_references, iter_records, load_records, reference_texts
    from selftrain.audit.report import run_audit_table
    from selftrain.audit.table import ScoreTable
    from selftrain.select.output import LabelQuality, pseudo_label_wer
    from selftrain.text import TextNormalizer

    held = run_selection(inputs["files"], tmp_path / "sel", SelectConfig(keep_fraction=0.5), AgreementConfig(),
                         calibration=inputs["calibration"], manifest=inputs["manifest"])
    records = load_records(held.paths["decisions"])
    attach_references(records, inputs["manifest"])
    expected = run_audit(records, target_wer=0.3, teacher=teacher, label="gen_001")
    references, quality = reference_texts(inputs["manifest"]), LabelQuality()

    def streamed():
        for utt in iter_records(held.paths["decisions"]):
            utt.reference = references[utt.id] if references.get(utt.id) is not None else utt.reference
            if utt.decision and utt.decision.kept and utt.reference:
                quality.add(utt, TextNormalizer())
            yield utt

    table = ScoreTable(streamed(), teacher=teacher)
    got = run_audit_table(table, target_wer=0.3, label="gen_001")
    assert json.dumps(got.to_dict()) == json.dumps(expected.to_dict())
    assert expected.with_reference > 0 and any(m.word_metrics for m in expected.methods)
    assert quality.result() == pseudo_label_wer([u for u in records if u.decision.kept and u.reference])
    write_audit(expected, tmp_path / "held_audit", records)
    write_audit(got, tmp_path / "table_audit", table)
    for name in ("audit.json", "audit.md"):
        assert (tmp_path / "table_audit" / name).read_bytes() == (tmp_path / "held_audit" / name).read_bytes()
