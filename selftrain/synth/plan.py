"""The corpus plan: for every utterance, its sentence, voice and effects, decided before any audio exists.

Every random choice for an utterance comes from a generator seeded by ``(seed, utterance id)``, so
an utterance is the same whatever the scale, the number of workers or the order of rendering, and
an interrupted run can resume by rendering only the missing files.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from selftrain.synth.config import SOURCE_SPLITS, SPLITS, EffectsConfig, SynthConfig
from selftrain.synth.effects import Conditions
from selftrain.synth.errors import SynthError
from selftrain.synth.sentences import Sentence

__all__ = ["UttPlan", "rng_for", "draw_conditions", "plan_corpus", "plan_babble"]


@dataclass(frozen=True)
class UttPlan:
    """One utterance to render: ``wav`` is relative to the corpus folder; ``group`` is known/unseen."""

    id: str
    split: str
    text: str
    spoken: str
    voice: str
    group: str
    conditions: Conditions
    wav: str

    @property
    def condition(self) -> str:
        """Voice group and whether it is degraded, e.g. ``known-clean`` or ``unseen-noisy``."""
        return f"{self.group}-{'noisy' if self.conditions.degraded else 'clean'}"


def rng_for(seed: int, *keys: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``keys`` (SHA-256, stable across processes)."""
    digest = hashlib.sha256("/".join([str(seed), *keys]).encode()).digest()
    return np.random.default_rng(np.random.SeedSequence(int.from_bytes(digest[:16], "big")))


def draw_conditions(effects: EffectsConfig, rng: np.random.Generator) -> Conditions:
    """Draw one utterance's conditions; always the same number of draws, so each value is stable."""
    tempo = rng.uniform(*effects.tempo)
    pitch = rng.uniform(*effects.pitch_cents)
    level = rng.uniform(*effects.level_dbfs)
    noisy, reverberant, phone, gsm = (
        rng.random() < p
        for p in (effects.noise_prob, effects.reverb_prob, effects.telephone_prob, effects.gsm_prob)
    )
    snr = rng.uniform(*effects.snr_db)
    reverb = rng.uniform(*effects.reverb)
    kinds = sorted(k for k, w in effects.noise_kinds.items() if w > 0)
    weights = np.array([effects.noise_kinds[k] for k in kinds], dtype=float)
    kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))] if kinds else None
    return Conditions(
        tempo=round(float(tempo), 4),
        pitch_cents=round(float(pitch), 1),
        level_dbfs=round(float(level), 2),
        noise=kind if noisy and kind else None,
        snr_db=round(float(snr), 2) if noisy and kind else None,
        reverb=round(float(reverb), 1) if reverberant else None,
        telephone=bool(phone),
        gsm=bool(gsm),
    )


def _plan_one(config: SynthConfig, split: str, index: int, pool: Sequence[Sentence]) -> UttPlan:
    utt_id = f"{split}-{index:05d}"
    rng = rng_for(config.seed, utt_id, "plan")
    domain = config.source if split in SOURCE_SPLITS else config.target
    known = rng.random() < domain.known_fraction
    voices = config.known_voices if known else config.unseen_voices
    voice = voices[int(rng.integers(len(voices)))]
    conditions = draw_conditions(domain.known if known else domain.unseen, rng)
    if split == "dev_source" and config.dev_source_clean:
        conditions = dataclasses.replace(
            conditions, noise=None, snr_db=None, reverb=None, telephone=False, gsm=False
        )
    sentence = pool[index % len(pool)]
    return UttPlan(
        utt_id,
        split,
        sentence.text,
        sentence.spoken,
        voice,
        "known" if known else "unseen",
        conditions,
        f"wav/{split}/{utt_id}.wav",
    )


def plan_corpus(config: SynthConfig, parts: Mapping[str, Sequence[Sentence]]) -> dict[str, list[UttPlan]]:
    """Plan every split: utterance ``i`` of a split speaks the split's sentence ``i`` (cycling if short)."""
    plans = {}
    for split in SPLITS:
        pool = parts.get(split) or []
        if not pool:
            raise SynthError(f"no sentences for split {split!r}: too little text for the text_shares given")
        plans[split] = [_plan_one(config, split, i, pool) for i in range(config.split_size(split))]
    return plans


def plan_babble(config: SynthConfig, lm_sentences: Sequence[Sentence]) -> list[UttPlan]:
    """Clean clips of LM-text sentences by all voices in turn: the material babble noise is made of."""
    voices = [*config.known_voices, *config.unseen_voices]
    plans = []
    for i in range(config.babble_size()):
        sentence = lm_sentences[i % len(lm_sentences)]
        utt_id = f"babble-{i:03d}"
        plans.append(
            UttPlan(
                utt_id,
                "babble",
                sentence.text,
                sentence.spoken,
                voices[i % len(voices)],
                "known" if i % len(voices) < len(config.known_voices) else "unseen",
                Conditions(level_dbfs=-25.0),
                f"noise/{utt_id}.wav",
            )
        )
    return plans
