"""The paired bootstrap that compares two recognizers on the same utterances."""

import json

import pytest

from selftrain.audit.significance import paired_bootstrap, utterance_errors
from selftrain.errors import ConfigError


def _errors(per_utterance):
    return {f"u{i}": (errors, 10) for i, errors in enumerate(per_utterance)}


def test_interval_brackets_the_difference_and_excludes_zero_only_for_a_real_one():
    better, worse = _errors([1] * 200), _errors([3] * 200)
    noisy = _errors([1 + (i % 3 == 0) - (i % 3 == 1) for i in range(200)])
    clear = paired_bootstrap(better, worse)
    assert clear.difference == pytest.approx(-0.2) and clear.low <= -0.2 <= clear.high < 0
    assert clear.significantly_better and not clear.significantly_worse
    chance = paired_bootstrap(noisy, better)
    assert chance.low < 0 < chance.high and chance.utterances == 200
    assert not chance.significantly_better and not chance.significantly_worse
    assert paired_bootstrap(worse, better).significantly_worse


def test_a_lower_confidence_gives_a_narrower_interval_on_the_shared_utterances_only():
    a = _errors([i % 4 for i in range(300)])
    b = {**_errors([(i + 1) % 4 for i in range(300)]), "only_in_b": (5, 5)}
    wide, narrow = paired_bootstrap(a, b, confidence=0.99), paired_bootstrap(a, b, confidence=0.5)
    assert narrow.utterances == wide.utterances == 300
    assert wide.low < narrow.low <= narrow.difference <= narrow.high < wide.high
    assert narrow.to_dict()["confidence"] == 0.5


def test_bad_settings_and_disjoint_systems_are_refused():
    with pytest.raises(ConfigError, match="confidence"):
        paired_bootstrap(_errors([1]), _errors([1]), confidence=1.0)
    with pytest.raises(ValueError, match="share no"):
        paired_bootstrap({"a": (1, 2)}, {"b": (1, 2)})


def test_utterance_errors_score_the_named_teacher_against_the_normalized_reference(tmp_path):
    manifest = tmp_path / "dev.csv"
    manifest.write_text("ID,duration,wav,spk_id,wrd\nu1,1.0,a.wav,s,Hello World\nu2,1.0,b.wav,s,good day\n")
    hyps = tmp_path / "dev_lm.jsonl"
    rows = [{"id": "u1", "wav": "a.wav", "duration": 1.0, "hypotheses": [{"teacher": "lm", "text": "hello word"},
                                                                        {"teacher": "greedy", "text": "hello world"}]},
            {"id": "u2", "wav": "b.wav", "duration": 1.0, "hypotheses": [{"teacher": "lm", "text": ""}]}]
    hyps.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert utterance_errors(hyps, manifest) == {"u1": (1, 2), "u2": (2, 2)}
    assert utterance_errors(hyps, manifest, teacher="greedy") == {"u1": (0, 2)}
