"""Sub-utterance pseudo-labels: confident runs, their boundaries and audio, decisions and measurement."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from selftrain.errors import ConfigError
from selftrain.record import Decision, Hypothesis, Segment, Utterance, Word
from selftrain.select import SelectConfig, run_selection
from selftrain.select.config import SegmentConfig
from selftrain.select.output import pseudo_label_wer
from selftrain.select.segments import (
    apply_segments,
    confident_runs,
    cut_segments,
    label_pairs,
    write_segment_audio,
)

RATE = 16000


def _hyp(words: list[tuple[str, float]], frames_per_word: int = 10, gap: int = 2) -> Hypothesis:
    """Words of ``frames_per_word`` frames with ``gap`` blank frames before each; 0.04 s per frame."""
    spans = []
    for i, (word, score) in enumerate(words):
        start = gap + i * (frames_per_word + gap)
        spans.append(Word(word, start, start + frames_per_word, {"combined": score}))
    num_frames = gap + len(words) * (frames_per_word + gap)
    return Hypothesis("lm", " ".join(w for w, _ in words), spans, num_frames=num_frames)


def _utt(uid: str, hyp: Hypothesis, reference: str | None = None, wav: str = "") -> Utterance:
    return Utterance(uid, wav, round(hyp.num_frames * 0.04, 3), reference=reference, hypotheses=[hyp],
                     pseudo_label=hyp.text)


def test_confident_runs_need_min_words_and_break_on_missing_scores():
    hyp = _hyp([("a", 0.9), ("b", 0.95), ("c", 0.85), ("d", 0.2), ("e", 0.9), ("f", 0.9), ("g", 0.99)])
    assert confident_runs(hyp, "combined", 0.8, 3) == [(0, 2), (4, 6)]
    assert confident_runs(hyp, "combined", 0.8, 4) == []
    hyp.words[5].scores = {}
    assert confident_runs(hyp, "combined", 0.8, 2) == [(0, 2)]


def test_calibrated_score_wins_over_raw():
    hyp = _hyp([("a", 0.1), ("b", 0.1)])
    for word in hyp.words:
        word.scores["combined_calibrated"] = 0.9
    assert confident_runs(hyp, "combined", 0.8, 2) == [(0, 1)]


def test_boundaries_lie_halfway_to_the_dropped_neighbours():
    # frames: word k spans [2 + 12k, 12 + 12k); 0.04 s per frame
    hyp = _hyp([("one", 0.1), ("two", 0.9), ("three", 0.9), ("four", 0.9), ("five", 0.1)])
    utt = _utt("u", hyp)
    [segment] = cut_segments(utt, hyp, SegmentConfig(threshold=0.8, min_words=3, min_seconds=0.5))
    assert segment.text == "two three four" and (segment.first_word, segment.last_word) == (1, 3)
    assert segment.start == pytest.approx(0.5 * (12 + 14) * 0.04)
    assert segment.end == pytest.approx(0.5 * (48 + 50) * 0.04)


@pytest.mark.parametrize("share, start_frame, end_frame", [(0.0, 14, 48), (0.25, 13.5, 48.5), (1.0, 12, 50)])
def test_gap_share_moves_the_boundaries_between_the_outer_words_and_their_neighbours(share, start_frame, end_frame):
    # "one" ends at frame 12, "two" starts at 14; "four" ends at 48, "five" starts at 50
    hyp = _hyp([("one", 0.1), ("two", 0.9), ("three", 0.9), ("four", 0.9), ("five", 0.1)])
    config = SegmentConfig(threshold=0.8, min_words=3, min_seconds=0.5, gap_share=share)
    [segment] = cut_segments(_utt("u", hyp), hyp, config)
    assert (segment.start, segment.end) == (pytest.approx(start_frame * 0.04), pytest.approx(end_frame * 0.04))


def test_gap_share_outside_zero_to_one_is_a_config_error():
    with pytest.raises(ConfigError, match="gap_share"):
        SegmentConfig(gap_share=1.5)


def test_runs_at_the_edges_reach_the_utterance_edges_and_short_ones_are_dropped():
    hyp = _hyp([("a", 0.9), ("b", 0.9), ("c", 0.9), ("d", 0.1), ("e", 0.9), ("f", 0.9), ("g", 0.9)])
    utt = _utt("u", hyp)
    first, last = cut_segments(utt, hyp, SegmentConfig(min_words=3, min_seconds=0.5))
    assert first.start == 0.0 and last.end == utt.duration
    assert cut_segments(utt, hyp, SegmentConfig(min_words=3, min_seconds=2.0)) == []


def test_apply_segments_cuts_confidence_drops_only():
    good = _hyp([("a", 0.9)] * 4)
    policy = "combined:threshold=0.5+sanity"
    dropped = _utt("dropped", good)
    dropped.decision = Decision(False, "threshold: confidence 0.300 < 0.5", policy)
    insane = _utt("insane", good)
    insane.decision = Decision(False, "repeat: 'a' 4 times in a row (limit 4)", policy)
    kept = _utt("kept", _hyp([("x", 0.9), ("y", 0.1), ("z", 0.9)]))
    kept.decision = Decision(True, "kept: confidence 0.900", policy)
    utts = [dropped, insane, kept]
    labelling = {u.id: u.hypotheses[0] for u in utts}
    config = SegmentConfig(enabled=True, min_words=3, min_seconds=0.5)
    assert apply_segments(utts, config, labelling) == 1
    assert dropped.decision.kept and dropped.decision.reason.startswith("segments: 1 run(s), 4 of 4 words")
    assert dropped.segments == []  # every word in one run: it trains whole
    assert dropped.decision.reason.endswith("; was threshold: confidence 0.300 < 0.5")
    assert not insane.decision.kept and not insane.segments
    assert kept.decision.kept and not kept.segments  # apply_to: dropped leaves kept utterances whole
    # 'dropped' (one run over all its words) is now kept whole: nothing to cut there
    assert apply_segments(utts, SegmentConfig(enabled=True, apply_to="all", min_words=3), labelling) == 0
    assert dropped.decision.kept and not dropped.segments
    assert not kept.decision.kept and kept.decision.reason.startswith("segments: no run of 3 words")
    # a run over every word keeps the utterance whole, from its own audio file
    part = _utt("part", _hyp([("p", 0.9), ("q", 0.9), ("r", 0.9), ("s", 0.1)]))
    part.decision = Decision(False, "keep_fraction: below the cut", policy)
    assert apply_segments([part], config, {"part": part.hypotheses[0]}) == 1
    assert part.decision.kept and len(part.segments) == 1 and "3 of 4 words" in part.decision.reason


def test_bad_segment_settings_are_config_errors():
    with pytest.raises(ConfigError, match="apply_to"):
        SegmentConfig(apply_to="some")
    with pytest.raises(ConfigError, match="threshold"):
        SelectConfig(segments={"threshold": 1.5})
    config = SegmentConfig()
    config.min_words = 0
    with pytest.raises(ConfigError, match="min_words"):
        apply_segments([], config, {})


def test_label_pairs_measure_each_segment_against_its_aligned_reference_words():
    hyp = _hyp([("the", 0.9), ("cat", 0.9), ("sad", 0.9), ("on", 0.1), ("a", 0.9), ("mat", 0.9), ("now", 0.9)])
    utt = _utt("u", hyp, reference="the cat sat upon the mat now")
    utt.segments = cut_segments(utt, hyp, SegmentConfig(min_words=3, min_seconds=0.5))
    assert list(label_pairs(utt, "the cat sat upon the mat now")) == [("the cat sat", "the cat sad"),
                                                                      ("the mat now", "a mat now")]
    quality = pseudo_label_wer([utt])
    assert quality is not None and quality["wer"] == pytest.approx(2 / 6)
    whole = Utterance("w", "", 1.0, reference="a b", pseudo_label="a c")
    assert list(label_pairs(whole, "a b")) == [("a b", "a c")]


def test_segment_audio_is_cut_at_the_segment_times(tmp_path):
    hyp = _hyp([("one", 0.1), ("two", 0.9), ("three", 0.9), ("four", 0.9)])
    samples = round(hyp.num_frames * 0.04 * RATE)
    audio = np.arange(samples, dtype=np.float32) / samples * 0.5
    wav = tmp_path / "u.wav"
    sf.write(wav, audio, RATE, subtype="FLOAT")
    utt = _utt("u", hyp, wav=str(wav))
    utt.segments = [Segment(0.5, 1.5, "two three four", 1, 3)]
    [row] = write_segment_audio(utt, tmp_path / "segments")
    piece, rate = sf.read(row.wav, dtype="float32")
    assert rate == RATE and row.id == "u__seg0" and row.pseudo_label == "two three four"
    assert row.duration == pytest.approx(1.0) and len(piece) == RATE
    assert piece[0] == pytest.approx(audio[int(0.5 * RATE)], abs=1e-4)
    assert not list((tmp_path / "segments").glob("*.partial.wav"))


def _selection_inputs(tmp_path):
    """A hypothesis file and manifest (with silent audio) of two utterances: 'whole' is confident
    throughout, 'parts' only in its first three words."""
    hyps = {"whole": _hyp([("a", 0.95), ("b", 0.95), ("c", 0.95)]),
            "parts": _hyp([("d", 0.9), ("e", 0.9), ("f", 0.9), ("g", 0.1), ("h", 0.2)])}
    lines, rows = [], ["ID,duration,wav,spk_id,wrd"]
    for uid, hyp in hyps.items():
        for word in hyp.words:
            word.scores["entropy_tsallis_exp"] = word.scores["combined"]
        hyp.scores = {"entropy_tsallis_exp": min(w.scores["combined"] for w in hyp.words)}
        duration = hyp.num_frames * 0.04
        sf.write(tmp_path / f"{uid}.wav", np.zeros(round(duration * RATE), dtype=np.float32), RATE)
        rows.append(f"{uid},{duration:.3f},{uid}.wav,s1,")
        lines.append(json.dumps(Utterance(uid, "", 0.0, hypotheses=[hyp]).to_dict()))
    manifest, hyp_file = tmp_path / "unlabeled.csv", tmp_path / "lm.jsonl"
    manifest.write_text("\n".join(rows) + "\n")
    hyp_file.write_text("\n".join(lines) + "\n")
    return hyp_file, manifest, sum(h.num_frames * 0.04 for h in hyps.values())


def _rows(path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {r["ID"]: r for r in csv.DictReader(handle)}


def test_run_selection_writes_segment_rows_and_measures_them(tmp_path):
    hyp_file, manifest, seconds = _selection_inputs(tmp_path)
    config = SelectConfig(threshold=0.5, segments=SegmentConfig(enabled=True, min_words=3, min_seconds=0.5, context="cut"))
    result = run_selection([hyp_file], tmp_path / "sel", config, manifest=manifest)
    rows = _rows(result.paths["csv"])
    assert set(rows) == {"whole", "parts__seg0"}
    assert rows["parts__seg0"]["wrd"] == "d e f" and rows["parts__seg0"]["wav"] == "segments/parts__seg0.wav"
    assert (tmp_path / "sel" / "segments" / "parts__seg0.wav").exists()
    summary = json.loads(result.paths["summary"].read_text())
    assert summary["kept"] == 2 and summary["segmented"] == 1
    assert summary["kept_hours"] < seconds / 3600


def test_select_cli_segments(tmp_path):
    from click.testing import CliRunner

    from selftrain.cli import main

    hyp_file, manifest, _ = _selection_inputs(tmp_path)
    out = tmp_path / "sel"
    args = ["select", "--hyps", str(hyp_file), "--manifest", str(manifest), "--out", str(out), "--method", "entropy_tsallis_exp",
            "--threshold", "0.5", "--segment-min-words", "3", "--segment-min-seconds", "0.5"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert set(_rows(out / "selected.csv")) == {"whole"}
    result = CliRunner().invoke(main, [*args, "--segments"])
    assert result.exit_code == 0, result.output
    assert "kept 2/2" in result.output and "1 in segments" in result.output and "segments: 1" in result.output
    rows = _rows(out / "selected.csv")
    assert set(rows) == {"whole", "parts"} and rows["parts"]["runs"]  # runs train in context by default
    result = CliRunner().invoke(main, [*args, "--segments", "--segment-context", "cut"])
    assert result.exit_code == 0, result.output
    assert set(_rows(out / "selected.csv")) == {"whole", "parts__seg0"}
    result = CliRunner().invoke(main, [*args, "--segments", "--segment-threshold", "1.5"])
    assert result.exit_code == 2 and "segment-threshold" in result.output


def test_experiment_config_checks_segment_settings_when_it_loads():
    from selftrain.generation import load_experiment_config

    config = load_experiment_config(overrides={"select": {"segments": {"enabled": True, "threshold": 0.7}}})
    assert config.select["segments"]["threshold"] == 0.7
    with pytest.raises(ConfigError, match="select.segments.apply_to"):
        load_experiment_config(overrides={"select": {"segments": {"apply_to": "everything"}}})
    with pytest.raises(ConfigError, match="select.segments.min_seconds"):
        load_experiment_config(overrides={"select": {"segments": {"min_seconds": "long"}}})


def test_runs_in_context_keep_the_utterance_whole_and_name_its_runs(tmp_path):
    from selftrain.data.manifest import read_manifest
    from selftrain.select.segments import parse_runs

    hyp_file, manifest, seconds = _selection_inputs(tmp_path)
    config = SelectConfig(threshold=0.5, segments=SegmentConfig(enabled=True, min_words=3, min_seconds=0.5,
                                                                context="whole"))
    result = run_selection([hyp_file], tmp_path / "sel", config, manifest=manifest)
    rows = _rows(result.paths["csv"])
    assert set(rows) == {"whole", "parts"}
    assert rows["parts"]["wav"] == rows["whole"]["wav"].replace("whole", "parts") and rows["parts"]["wrd"] == "d e f"
    assert rows["parts"]["wav"].endswith("/parts.wav")
    assert not (tmp_path / "sel" / "segments").exists()  # no audio is cut
    [(start, end, words)] = parse_runs(next(u for u in read_manifest(result.paths["csv"]) if u.id == "parts"))
    assert (start, words) == (0.0, "d e f") and end == pytest.approx(0.5 * (36 + 38) * 0.04)
    assert rows["whole"]["runs"] == ""  # kept whole, every word trains
    summary = json.loads(result.paths["summary"].read_text())
    assert summary["segmented"] == 1 and summary["kept_hours"] < seconds / 3600


def test_malformed_runs_are_manifest_errors():
    from selftrain.errors import ManifestError
    from selftrain.select.segments import parse_runs

    assert parse_runs(Utterance("u", "u.wav", 2.0)) == []
    with pytest.raises(ManifestError, match="not a JSON list"):
        parse_runs(Utterance("u", "u.wav", 2.0, extra={"runs": '[[0.0, "a b"]]'}))
    with pytest.raises(ManifestError, match="not a span of seconds"):
        parse_runs(Utterance("u", "u.wav", 2.0, extra={"runs": '[[1.5, 1.0, "a b"]]'}))
    with pytest.raises(ConfigError, match="segments.context"):
        SegmentConfig(context="padded")


@pytest.mark.parametrize("context", ["cut", "whole"])
def test_streamed_selection_cuts_the_same_segments(tmp_path, context):
    from selftrain.select.stream import run_selection_stream

    hyp_file, manifest, _ = _selection_inputs(tmp_path)
    config = SelectConfig(threshold=0.5, segments=SegmentConfig(enabled=True, min_words=3, min_seconds=0.5, context=context))
    held = run_selection([hyp_file], tmp_path / "held", config, manifest=manifest)
    streamed = run_selection_stream([hyp_file], tmp_path / "streamed", config, manifest=manifest)
    for key in ("csv", "decisions", "summary"):
        assert streamed.paths[key].read_bytes() == held.paths[key].read_bytes(), key
    cut = sorted(p.name for p in (tmp_path / "streamed").rglob("*.wav"))
    assert cut == sorted(p.name for p in (tmp_path / "held").rglob("*.wav")) and (cut != []) == (context == "cut")
