"""Config validation, the per-utterance plan and tool checks of the synthetic corpus."""

from __future__ import annotations

import pytest

from selftrain.errors import ConfigError
from selftrain.synth import voices
from selftrain.synth.config import SPLITS, SynthConfig
from selftrain.synth.errors import MissingToolError, SynthError
from selftrain.synth.plan import plan_babble, plan_corpus, rng_for
from selftrain.synth.sentences import Sentence, assign_splits
from selftrain.synth.voices import Voice, check_tools


def _parts(config: SynthConfig, n: int = 4000):
    sentences = [
        Sentence(spoken=f"Sentence number {i}.", text=f"sentence {i:05d} words here") for i in range(n)
    ]
    return assign_splits(sentences, config.text_shares)


def test_defaults_are_valid_and_aim_at_the_documented_mix():
    config = SynthConfig().validate()
    assert config.source.known_fraction == 1.0
    assert 0.8 <= config.target.known_fraction <= 0.9
    assert config.max_vocabulary == 6000
    assert 6 <= len(config.known_voices) <= 8
    assert config.sizes["unlabeled"] >= 3 * config.sizes["labeled"]
    assert config.text_shares["lm"] == max(config.text_shares.values())


def test_from_dict_merges_partial_overrides():
    config = SynthConfig.from_dict(
        {"target": {"known": {"snr_db": [5, 10]}}, "sizes": {"labeled": 3}}
    ).validate()
    assert config.target.known.snr_db == (5.0, 10.0)
    assert (
        config.target.known.noise_prob == SynthConfig().target.known.noise_prob
    )  # untouched keys keep defaults
    assert config.target.known_fraction == SynthConfig().target.known_fraction
    assert config.sizes["labeled"] == 3 and config.sizes["unlabeled"] == SynthConfig().sizes["unlabeled"]


@pytest.mark.parametrize(
    "override, message",
    [
        ({"nosuchkey": 1}, "unknown config key"),
        ({"target": {"known": {"colour": 1}}}, "target.known.colour"),
        ({"scale": 0}, "scale"),
        ({"target": {"known_fraction": 1.5}}, "target.known_fraction"),
        ({"target": {"unseen": {"snr_db": [20, 5]}}}, "target.unseen.snr_db"),
        ({"source": {"known": {"noise_prob": -0.1}}}, "source.known.noise_prob"),
        ({"target": {"known": {"noise_kinds": {"purple": 1}}}}, "noise_kinds"),
        ({"unseen_voices": ["espeak:en-us+m3"]}, "both known and unseen"),
        ({"known_voices": ["mbrola:us1"]}, "engine:name"),
        ({"text_shares": {"lm": 0.1, "unlabeled": 0.5}}, "largest share"),
        ({"min_words": 10, "max_words": 5}, "min_words"),
    ],
)
def test_invalid_config_raises_a_named_error(override, message):
    with pytest.raises(ConfigError, match=message):
        SynthConfig.from_dict(override).validate()


def test_split_size_scales_and_never_drops_below_two():
    config = SynthConfig(scale=0.0001).validate()
    assert all(config.split_size(s) == 2 for s in SPLITS)
    assert SynthConfig(scale=0.5).split_size("labeled") == SynthConfig().sizes["labeled"] // 2


def test_plan_is_deterministic_per_seed_and_independent_of_scale():
    small, large = SynthConfig(scale=0.01).validate(), SynthConfig(scale=0.02).validate()
    plan_small, plan_large = plan_corpus(small, _parts(small)), plan_corpus(large, _parts(large))
    for split in SPLITS:
        assert plan_large[split][: len(plan_small[split])] == plan_small[split]
    assert plan_corpus(small, _parts(small)) == plan_small
    other = SynthConfig(scale=0.01, seed=1).validate()
    assert plan_corpus(other, _parts(other)) != plan_small


def test_plan_respects_domains():
    config = SynthConfig(scale=0.2).validate()
    plans = plan_corpus(config, _parts(config))
    for split in ("labeled", "dev_source"):
        assert {p.voice for p in plans[split]} <= set(config.known_voices)
        assert all(p.condition.startswith("known-") for p in plans[split])
    unlabeled = plans["unlabeled"]
    known_share = sum(p.group == "known" for p in unlabeled) / len(unlabeled)
    assert abs(known_share - config.target.known_fraction) < 0.06
    assert {p.voice for p in unlabeled if p.group == "unseen"} <= set(config.unseen_voices)
    noisy_share = sum(p.conditions.noise is not None for p in unlabeled if p.group == "known") / (
        known_share * len(unlabeled)
    )
    assert abs(noisy_share - config.target.known.noise_prob) < 0.08
    snrs = [p.conditions.snr_db for p in unlabeled if p.group == "known" and p.conditions.snr_db is not None]
    assert config.target.known.snr_db[0] <= min(snrs) and max(snrs) <= config.target.known.snr_db[1]
    texts = {name: {p.text for p in items} for name, items in plans.items()}
    assert not texts["labeled"] & (texts["unlabeled"] | texts["dev"] | texts["test"] | texts["dev_source"])


def test_babble_uses_every_voice_and_lm_sentences():
    config = SynthConfig().validate()
    parts = _parts(config)
    babble = plan_babble(config, parts["lm"])
    assert len(babble) == config.babble_clips
    assert {p.voice for p in babble} == set(config.known_voices) | set(config.unseen_voices)
    assert {p.text for p in babble} <= {s.text for s in parts["lm"]}


def test_rng_for_depends_on_seed_and_keys_only():
    assert rng_for(3, "a", "b").random() == rng_for(3, "a", "b").random()
    assert rng_for(3, "a", "b").random() != rng_for(4, "a", "b").random()
    assert rng_for(3, "a", "b").random() != rng_for(3, "a", "c").random()


def test_missing_binary_names_the_debian_package(monkeypatch):
    monkeypatch.setattr(voices.shutil, "which", lambda name: None if name == "flite" else f"/usr/bin/{name}")
    with pytest.raises(MissingToolError, match="apt-get install flite") as info:
        check_tools([Voice.parse("espeak:en-us"), Voice.parse("flite:awb")])
    assert info.value.package == "flite"


def test_missing_festival_voice_names_its_package(monkeypatch):
    monkeypatch.setattr(voices.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(voices, "_festival_voice_installed", lambda name: False)
    with pytest.raises(MissingToolError, match="festvox-kdlpc16k"):
        check_tools([Voice.parse("festival:ked")])


def test_voice_parse():
    assert str(Voice.parse("espeak:en-gb-scotland+m2")) == "espeak:en-gb-scotland+m2"
    with pytest.raises(SynthError):
        Voice.parse("en-us")


def test_dev_source_is_clean_unless_asked_otherwise():
    noisy_source = {"source": {"known": {"noise_prob": 1.0, "reverb_prob": 1.0}}, "scale": 0.1}
    config = SynthConfig.from_dict(noisy_source).validate()
    plans = plan_corpus(config, _parts(config))
    assert all(not p.conditions.degraded for p in plans["dev_source"])
    assert all(p.conditions.degraded for p in plans["labeled"])
    config = SynthConfig.from_dict({**noisy_source, "dev_source_clean": False}).validate()
    assert all(p.conditions.degraded for p in plan_corpus(config, _parts(config))["dev_source"])
