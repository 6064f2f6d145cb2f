"""The automatic threshold: the most permissive one meeting the target WER on dev, with a floor."""

from selftrain.generation import load_experiment_config
from selftrain.generation.stages_select import _auto_threshold
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


def test_the_selection_stage_ranks_by_the_calibrated_combination_unless_told_a_method(tmp_path, monkeypatch):
    import json

    from selftrain.data.manifest import write_speechbrain_csv
    from selftrain.generation import stages, stages_select
    from selftrain.record import Word

    def split(name: str, count: int) -> tuple[str, str]:
        records = []
        for i in range(count):  # confidence falls with the index; the second half is wrong
            conf, text = 1.0 - i / count, "a b c d" if i < count // 2 else "x y c d"
            words = [Word(w, 2 * k, 2 * k + 1, {"entropy_tsallis_exp": conf}) for k, w in enumerate(text.split())]
            hyp = Hypothesis("lm", text, words, scores={"entropy_tsallis_exp": conf})
            records.append(Utterance(f"{name}{i}", f"{name}{i}.wav", 2.0, reference="a b c d", hypotheses=[hyp]))
        hyps, manifest = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.csv"
        hyps.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records), encoding="utf-8")
        write_speechbrain_csv(records, manifest)
        return str(hyps), str(manifest)

    (dev_hyps, dev), (unlabeled_hyps, unlabeled) = split("d", 40), split("u", 10)
    monkeypatch.setattr(stages_select, "selection_inputs", lambda workdir, generation: {"unlabeled": [unlabeled_hyps],
                                                                                       "dev": [dev_hyps]})
    base = {"data": {"dev": dev, "unlabeled": unlabeled}, "speaking_rate_quantile": None}
    chosen = stages.select_pseudo_labels(load_experiment_config(overrides=base), None, 1, tmp_path / "auto")
    assert chosen.method == "combined"
    named = load_experiment_config(overrides={**base, "select": {"method": "entropy_tsallis_exp"}})
    assert stages.select_pseudo_labels(named, None, 1, tmp_path / "named").method == "entropy_tsallis_exp"
