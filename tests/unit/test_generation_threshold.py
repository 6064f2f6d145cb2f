"""The automatic threshold: the most permissive one meeting the target WER on dev, with a floor."""

from selftrain.generation import load_experiment_config
from selftrain.generation.stages import _auto_threshold
from selftrain.record import Hypothesis, Utterance


def _dev(count: int = 20) -> list[Utterance]:
    # Confidence falls with the index; the last ten utterances are all wrong.
    records = []
    for i in range(count):
        text = "a b c d" if i < count // 2 else "x y z w"
        utt = Utterance(id=f"d{i}", wav="", duration=1.0, reference="a b c d",
                        hypotheses=[Hypothesis("lm", text, scores={"s": 1.0 - i / count})])
        utt.pseudo_label, utt.confidence = text, 1.0 - i / count
        records.append(utt)
    return records


def _config(target: float, floor: float):
    return load_experiment_config(overrides={"threshold": {"target_wer": target, "min_keep_fraction": floor}})


def test_most_permissive_threshold_under_the_target():
    threshold, info = _auto_threshold(_config(0.0, 0.2), _dev())
    assert info["dev_choice"]["kept_fraction"] == 0.5 and info["dev_choice"]["wer"] == 0.0
    assert threshold == 1.0 - 9 / 20


def test_floor_applies_when_the_target_is_met_only_below_it():
    threshold, info = _auto_threshold(_config(0.0, 0.7), _dev())
    assert info["dev_choice"]["kept_fraction"] == 0.7 and threshold == 1.0 - 13 / 20


def test_floor_applies_when_the_target_is_never_met():
    records = _dev()
    for utt in records:
        utt.pseudo_label = "x y z w"
    _, info = _auto_threshold(_config(0.1, 0.3), records)
    assert info["dev_choice"]["kept_fraction"] == 0.3
