"""Configuration of the synthetic corpus: voices, split sizes, text shares and acoustic conditions.

Two *domains* describe how audio sounds. The **source** domain (``labeled`` and ``dev_source``) is
the few known voices, nearly clean. The **target** domain (``unlabeled``, ``dev``, ``test``) mixes
the known voices speaking new sentences under mild-to-moderate degradation with unseen voices
(other espeak-ng accents and variants, flite voices, festival ked), so a teacher trained on the
labeled set is neither perfect nor hopeless on it. Every number has a documented default; change
them in a JSON/YAML file given to ``selftrain synth --config`` (keys as in :class:`SynthConfig`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from selftrain.errors import ConfigError
from selftrain.overrides import deep_merge

__all__ = [
    "EffectsConfig",
    "DomainConfig",
    "SynthConfig",
    "SPLITS",
    "SOURCE_SPLITS",
    "TARGET_SPLITS",
    "ENGINES",
]

SOURCE_SPLITS = ("labeled", "dev_source")
TARGET_SPLITS = ("unlabeled", "dev", "test")
SPLITS = SOURCE_SPLITS + TARGET_SPLITS
ENGINES = ("espeak", "flite", "festival")
NOISE_KINDS = ("white", "pink", "brown", "babble")


def _range(value: Any, name: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a pair [low, high], got {value!r}") from exc
    if low > high:
        raise ConfigError(f"{name}: low {low} is above high {high}")
    return (low, high)


def _probability(value: float, name: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must lie in [0, 1], got {value}")


@dataclass
class EffectsConfig:
    """How one group of utterances is degraded; each value is drawn per utterance (uniform in ranges).

    ``tempo`` is sox's tempo factor (speaking rate, pitch kept), ``pitch_cents`` a pitch shift,
    ``level_dbfs`` the RMS level of the speech. Noise (probability ``noise_prob``, one of
    ``noise_kinds`` chosen with the given weights) is mixed at an SNR drawn from ``snr_db``,
    measured as the power ratio over the whole clip. ``reverb`` is sox's reverberance (%),
    ``telephone`` a 300-3400 Hz band-pass, ``gsm`` a GSM 06.10 round trip at 8 kHz (band-limited
    too). Effects are independent draws.
    """

    tempo: tuple[float, float] = (0.95, 1.05)
    pitch_cents: tuple[float, float] = (-50.0, 50.0)
    level_dbfs: tuple[float, float] = (-28.0, -20.0)
    noise_prob: float = 0.0
    snr_db: tuple[float, float] = (15.0, 30.0)
    noise_kinds: dict[str, float] = field(
        default_factory=lambda: {"white": 1.0, "pink": 1.0, "brown": 1.0, "babble": 1.0}
    )
    reverb_prob: float = 0.0
    reverb: tuple[float, float] = (20.0, 60.0)
    telephone_prob: float = 0.0
    gsm_prob: float = 0.0

    def validate(self, name: str) -> None:
        """Check ranges, probabilities and noise kinds; raise :class:`ConfigError` naming the bad key."""
        for key in ("tempo", "pitch_cents", "level_dbfs", "snr_db", "reverb"):
            setattr(self, key, _range(getattr(self, key), f"{name}.{key}"))
        for key in ("noise_prob", "reverb_prob", "telephone_prob", "gsm_prob"):
            _probability(getattr(self, key), f"{name}.{key}")
        if self.tempo[0] <= 0.5 or self.tempo[1] >= 2.0:
            raise ConfigError(f"{name}.tempo must lie in (0.5, 2.0), got {self.tempo}")
        if self.level_dbfs[1] > -3.0:
            raise ConfigError(f"{name}.level_dbfs must stay below -3 dBFS, got {self.level_dbfs}")
        if self.reverb[0] < 0.0 or self.reverb[1] > 100.0:
            raise ConfigError(f"{name}.reverb must lie in [0, 100], got {self.reverb}")
        unknown = set(self.noise_kinds) - set(NOISE_KINDS)
        if unknown:
            raise ConfigError(
                f"{name}.noise_kinds: unknown kind(s) {sorted(unknown)} (known: {list(NOISE_KINDS)})"
            )
        if self.noise_prob > 0 and (not self.noise_kinds or sum(self.noise_kinds.values()) <= 0):
            raise ConfigError(f"{name}.noise_kinds needs a positive weight when noise_prob > 0")
        if any(w < 0 for w in self.noise_kinds.values()):
            raise ConfigError(f"{name}.noise_kinds weights must not be negative")


def _clean_source() -> EffectsConfig:
    return EffectsConfig(
        tempo=(0.95, 1.05),
        pitch_cents=(-50.0, 50.0),
        noise_prob=0.2,
        snr_db=(25.0, 35.0),
        noise_kinds={"white": 1.0, "pink": 1.0},
    )


def _target(noise_prob: float) -> EffectsConfig:
    """Target-domain conditions (calibrated: recipes/synthetic/README.md); only the noise share differs."""
    return EffectsConfig(
        tempo=(0.9, 1.12),
        pitch_cents=(-150.0, 150.0),
        noise_prob=noise_prob,
        snr_db=(18.0, 30.0),
        reverb_prob=0.05,
        reverb=(15.0, 35.0),
        telephone_prob=0.03,
        gsm_prob=0.02,
    )


def _target_known() -> EffectsConfig:
    return _target(noise_prob=0.4)


def _target_unseen() -> EffectsConfig:
    return _target(noise_prob=0.3)


@dataclass
class DomainConfig:
    """A mix of voices and conditions: ``known_fraction`` of utterances use known voices."""

    known_fraction: float = 1.0
    known: EffectsConfig = field(default_factory=_clean_source)
    unseen: EffectsConfig = field(default_factory=_target_unseen)

    def validate(self, name: str) -> None:
        _probability(self.known_fraction, f"{name}.known_fraction")
        self.known.validate(f"{name}.known")
        self.unseen.validate(f"{name}.unseen")


def _known_voices() -> list[str]:
    return [
        "espeak:en-us+m3",
        "espeak:en-us+f2",
        "espeak:en-us+m1",
        "espeak:en+f3",
        "espeak:en-us+klatt",
        "festival:kal",
        "flite:slt",
    ]


def _unseen_voices() -> list[str]:
    return [
        "espeak:en-gb-scotland+m2",
        "espeak:en-029+f1",
        "espeak:en-gb-x-rp+m5",
        "espeak:en-us-nyc+f4",
        "espeak:en-gb-x-gbclan+m7",
        "flite:awb",
        "flite:rms",
        "festival:ked",
    ]


def _sizes() -> dict[str, int]:
    return {"labeled": 1500, "unlabeled": 4500, "dev": 400, "test": 400, "dev_source": 250}


def _text_shares() -> dict[str, float]:
    return {"lm": 0.45, "labeled": 0.1, "unlabeled": 0.33, "dev": 0.04, "test": 0.04, "dev_source": 0.04}


@dataclass
class SynthConfig:
    """Everything that decides the corpus (``workers`` excepted: it never changes the output).

    Defaults (calibrated with a real teacher: ``recipes/synthetic/README.md``): ``labeled`` ~1.25 h
    from the 7 known voices (nearly clean, small speed/pitch variation); ``unlabeled`` ~3.8 h,
    ``dev`` and ``test`` ~0.34 h each, all from the target domain (85 % known voices speaking new
    sentences, 40 % of them with noise and a few with reverb or a telephone/GSM channel; 15 % unseen
    voices); ``dev_source`` ~0.2 h of held-out sentences by the known voices, clean. The text is
    limited to sentences within the 6,000 most frequent words (a medium-vocabulary task whose LM
    text covers the spoken words). ``sizes`` are utterance counts at ``scale`` 1 (an utterance
    averages ~3 s).
    ``text_shares`` split the sentences (LM text gets the largest share); when a split needs more
    utterances than it has sentences, its sentences are reused by other voices (reported in
    ``corpus.json``). ``split_salt`` changes the sentence partition without changing the seed.
    ``dev_source_clean`` drops the source domain's light noise for ``dev_source`` (speed, pitch and
    level still vary), so it measures a teacher on its own voices without degradation.
    ``lm_text_unspoken`` adds to the LM text every other speakable fortunes sentence that no
    utterance says, of any length up to 60 words and any vocabulary (on the self-training
    benchmark's corpus 18.4k sentences, 237k words, instead of 4.1k and 39k:
    docs/experiments/2026-12-03-strong-lm.md): a larger LM text, as real systems have, that still
    never contains a spoken sentence. It changes ``lm_text.txt`` only, never the audio.
    """

    seed: int = 0
    scale: float = 1.0
    known_voices: list[str] = field(default_factory=_known_voices)
    unseen_voices: list[str] = field(default_factory=_unseen_voices)
    sizes: dict[str, int] = field(default_factory=_sizes)
    text_shares: dict[str, float] = field(default_factory=_text_shares)
    source: DomainConfig = field(default_factory=lambda: DomainConfig(known_fraction=1.0))
    target: DomainConfig = field(
        default_factory=lambda: DomainConfig(known_fraction=0.85, known=_target_known())
    )
    min_words: int = 4
    max_words: int = 20
    max_vocabulary: int | None = 6000  # keep only sentences within the N most frequent words (None: all)
    babble_clips: int = 24
    babble_talkers: tuple[int, int] = (3, 6)
    sample_rate: int = 16000
    fortunes_dir: str = "/usr/share/games/fortunes"
    split_salt: str = ""
    dev_source_clean: bool = True
    lm_text_unspoken: bool = False

    def validate(self) -> SynthConfig:
        """Check every field; raise :class:`ConfigError` naming the bad key. Returns ``self``."""
        if self.scale <= 0:
            raise ConfigError(f"scale must be positive, got {self.scale}")
        if not self.known_voices:
            raise ConfigError("known_voices must not be empty")
        if self.target.known_fraction < 1.0 and not self.unseen_voices:
            raise ConfigError("unseen_voices must not be empty when target.known_fraction < 1")
        overlap = set(self.known_voices) & set(self.unseen_voices)
        if overlap:
            raise ConfigError(f"a voice cannot be both known and unseen: {sorted(overlap)}")
        for voice in [*self.known_voices, *self.unseen_voices]:
            engine, _, name = voice.partition(":")
            if engine not in ENGINES or not name:
                raise ConfigError(
                    f"voice {voice!r} must look like 'engine:name' with engine in {list(ENGINES)}"
                )
        if set(self.sizes) != set(SPLITS):
            raise ConfigError(f"sizes must give exactly the splits {list(SPLITS)}, got {sorted(self.sizes)}")
        if any(int(n) < 1 for n in self.sizes.values()):
            raise ConfigError("sizes must be positive")
        if set(self.text_shares) != {"lm", *SPLITS} or any(v <= 0 for v in self.text_shares.values()):
            raise ConfigError(f"text_shares must give a positive share to each of {['lm', *SPLITS]}")
        if max(self.text_shares.values()) != self.text_shares["lm"]:
            raise ConfigError("text_shares: the LM text must get the largest share")
        if self.max_vocabulary is not None and self.max_vocabulary < 100:
            raise ConfigError(f"max_vocabulary must be >= 100 (or null), got {self.max_vocabulary}")
        if not 1 <= self.min_words <= self.max_words:
            raise ConfigError(f"need 1 <= min_words <= max_words, got {self.min_words}, {self.max_words}")
        low, high = (int(v) for v in self.babble_talkers)
        if not 1 <= low <= high or self.babble_clips < high:
            raise ConfigError(
                f"babble_talkers {self.babble_talkers} must be 1 <= low <= high <= babble_clips"
            )
        self.babble_talkers = (low, high)
        if self.sample_rate not in (8000, 16000, 22050, 24000, 44100, 48000):
            raise ConfigError(f"unsupported sample_rate {self.sample_rate}")
        self.source.validate("source")
        self.target.validate("target")
        return self

    def split_size(self, split: str) -> int:
        """Utterances of ``split`` at this scale: never fewer than 2."""
        return max(2, round(self.sizes[split] * self.scale))

    def babble_size(self) -> int:
        """Babble clips to synthesize at this scale (enough for the largest talker count)."""
        return max(self.babble_talkers[1], min(self.babble_clips, round(self.babble_clips * self.scale * 4)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthConfig:
        """Build from nested dicts (e.g. a parsed YAML/JSON file); unknown keys raise :class:`ConfigError`."""
        if not isinstance(data, dict):
            raise ConfigError(f"config must be a mapping, got {type(data).__name__}")
        return _build(cls, deep_merge(cls().to_dict(), data), "")


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ConfigError(f"unknown config key(s) {sorted(f'{where}{k}' for k in unknown)}")
    nested = {"source": DomainConfig, "target": DomainConfig, "known": EffectsConfig, "unseen": EffectsConfig}
    kwargs = {}
    for key, value in data.items():
        if key in nested and isinstance(value, dict):
            value = _build(nested[key], value, f"{where}{key}.")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad config at {where or 'top level'}: {exc}") from exc
