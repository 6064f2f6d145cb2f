import json

import pytest

from selftrain.io import JsonlWriter, atomic_write_json, read_jsonl
from selftrain.record import Decision, Hypothesis, NBestEntry, Utterance, Word


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "x.json"
    atomic_write_json(path, {"a": 1})
    with pytest.raises(RuntimeError):
        from selftrain.io import atomic_write

        with atomic_write(path) as handle:
            handle.write("partial")
            raise RuntimeError("killed")
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temp file left behind


def test_jsonl_writer_resumes_and_drops_torn_line(tmp_path):
    path = tmp_path / "hyps.jsonl"
    with JsonlWriter(path) as out:
        for i in range(3):
            out.write({"id": f"u{i}", "text": "x"})
    with open(path, "a") as handle:
        handle.write('{"id": "u3", "te')  # a kill in the middle of a write
    assert [r["id"] for r in read_jsonl(path)] == ["u0", "u1", "u2"]
    with JsonlWriter(path) as out:
        assert out.done == {"u0", "u1", "u2"}
        for i in range(5):
            if f"u{i}" not in out.done:
                out.write({"id": f"u{i}", "text": "y"})
    assert [r["id"] for r in read_jsonl(path)] == ["u0", "u1", "u2", "u3", "u4"]


def test_jsonl_writer_without_resume_starts_over(tmp_path):
    path = tmp_path / "h.jsonl"
    with JsonlWriter(path) as out:
        out.write({"id": "a"})
    with JsonlWriter(path, resume=False) as out:
        assert out.done == set()
        out.write({"id": "b"})
    assert [r["id"] for r in read_jsonl(path)] == ["b"]


def test_utterance_record_round_trip():
    utt = Utterance(
        id="u1", wav="/a.wav", duration=1.5, spk_id="s", reference=None,
        hypotheses=[Hypothesis(teacher="gen0", text="hi there", words=[Word("hi", 0, 3, {"max_prob": 0.9}), Word("there", 4, 9)],
                               nbest=[NBestEntry("hi there", -1.0, -2.0, -3.0)], scores={"max_prob": 0.8}, num_frames=10)],
        agreement={"pairwise_wer": 0.0}, pseudo_label="hi there", confidence=0.8,
        decision=Decision(True, "confidence 0.80 >= 0.50", "threshold"),
    )
    again = Utterance.from_dict(json.loads(json.dumps(utt.to_dict())))
    assert again == utt
    assert again.hypothesis("gen0").words[0].scores == {"max_prob": 0.9}
    assert again.hypothesis("other") is None
