"""Human speech for self-training: the spoken dialogs of the game Fish Fillets NG (Debian packages).

Debian's ``fillets-ng-data`` holds every level's dialogs per language and ``fillets-ng-data-<lang>``
(``nl``: Dutch) their recordings, two speakers (the fonts ``font_small`` and ``font_big``)::

    <root>/script/<level>/dialogs_<lang>.lua   dialogId("<id>", "<font>", "<english>") dialogStr("<text>")
    <root>/sound/<level>/<lang>/<id>.ogg       the line spoken (Vorbis)

:func:`prepare_fillets` turns them into the four manifests of a self-training run, an LM text and
``corpus.json`` (counts, hours per split and speaker, the characters of each split, every dropped
line with its reason). Output folder (CSV paths relative to it)::

    labeled.csv  unlabeled.csv  unlabeled_reference.csv  dev.csv  test.csv  lm_text.txt  corpus.json
    wav/<level>/<id>.wav   16 kHz mono 16-bit PCM

Transcripts are normalised by :data:`DIALOG_NORMALIZER` (see :func:`normalize_line`); lines with
digits or format strings are dropped, since how they are read out is unknown. A clip whose bytes
repeat an earlier one is kept once. Splits are drawn by sentence, so one sentence never lands in two
splits, and per speaker group, so each split has the speakers' mix of the whole corpus. The LM text
holds the labeled sentences (plus ``lm_extra``) and none of the other splits'.

The dialog files are read by :mod:`selftrain.data.fillets_dialogs`; this module splits and writes.

>>> corpus = prepare_fillets(FilletsConfig(lang="nl", seed=0), "data/fillets_nl")  # doctest: +SKIP
>>> corpus.splits["dev"].hours  # doctest: +SKIP
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from selftrain.data.fillets_dialogs import (
    DIALOG_NORMALIZER,
    DialogLine,
    DroppedLine,
    drop_reason,
    normalize_line,
    read_dialogs,
    usable_lines,
)
from selftrain.errors import AudioError, ConfigError, CorpusError
from selftrain.record import Utterance

__all__ = ["FilletsConfig", "DialogLine", "DroppedLine", "SplitStats", "FilletsCorpus", "DIALOG_NORMALIZER",
           "SPLITS", "read_dialogs", "normalize_line", "drop_reason", "split_by_sentence", "prepare_fillets"]

SPLITS = ("labeled", "unlabeled", "dev", "test")


@dataclass(frozen=True)
class FilletsConfig:
    """What ``selftrain data prepare fillets`` reads and how it splits it.

    Split sizes count sentences (normalised transcripts): a value below 1 is a fraction of them, a
    value of 1 or more a number of them. ``dev``, ``test`` and ``labeled`` are drawn in that order;
    ``unlabeled`` takes what is left when None, else its own size (the rest is then left out).
    """

    # the installed game data (Debian packages fillets-ng-data and fillets-ng-data-LANG)
    root: str = "/usr/share/games/fillets-ng"
    lang: str = "nl"  # the dialogs' language: `dialogs_LANG.lua` and `sound/LEVEL/LANG/`
    seed: int = 0  # seed of the split (the same seed gives the same split)
    labeled: float = 0.2  # transcribed training sentences
    dev: float = 0.1  # transcribed target-domain sentences: early stopping, calibration, thresholds
    test: float = 0.1  # test sentences, reported only
    unlabeled: float | None = None  # unlabeled sentences; None: every sentence not in another split
    # Move one sentence holding each character the labeled split lacks into it (from unlabeled,
    # else dev, else test): the model's alphabet comes from the labeled text.
    labeled_covers_alphabet: bool = True
    sample_rate: int = 16000  # of the WAVs written
    # a text file (one sentence per line) added to the LM text, less the sentences of unlabeled, dev
    # and test; "" = none
    lm_extra: str = ""

    def __post_init__(self) -> None:
        for name in ("labeled", "dev", "test", "unlabeled"):
            value = getattr(self, name)
            if value is not None and (value < 0 or (value >= 1 and value != int(value))):
                raise ConfigError(f"{name}: a fraction below 1 or a whole number of sentences, got {value}")
        if not re.fullmatch(r"[A-Za-z_]+", self.lang):
            raise ConfigError(f"lang: a language code such as nl or de_CH, got {self.lang!r}")


@dataclass
class SplitStats:
    """One split's size: utterances, sentences, hours, per speaker, and the characters it uses."""

    utterances: int
    sentences: int
    hours: float
    utterances_by_speaker: dict[str, int]
    hours_by_speaker: dict[str, float]
    characters: str


@dataclass
class FilletsCorpus:
    """What :func:`prepare_fillets` wrote (``corpus.json`` holds it, plus the config)."""

    out_dir: str
    splits: dict[str, SplitStats]
    alphabet: str  # every character of the kept transcripts but the space, sorted
    dialog_lines: int  # dialog lines read (pairs of dialogId and dialogStr)
    dropped: dict[str, int]  # dropped lines by reason
    dropped_lines: list[DroppedLine]
    duplicate_clips: int  # clips whose bytes repeat a kept one
    clips_without_text: list[str]  # recordings no dialog line names
    moved_for_alphabet: list[dict[str, str]]  # sentences moved into labeled, their character and origin
    lm_sentences: int
    source_formats: dict[str, int]  # kept clips by sample rate and channels, e.g. "22050 Hz, 2 ch"
    converted: int  # WAVs written by this run
    reused: int  # valid WAVs already there from an earlier run

    def to_dict(self) -> dict:
        return asdict(self)


def _size(value: float | None, total: int) -> int | None:
    if value is None:
        return None
    return int(value) if value >= 1 else round(value * total)


def _allocate(target: int, capacity: dict[str, int], sizes: dict[str, int]) -> dict[str, int]:
    """Share ``target`` sentences among speaker groups in proportion to their ``sizes`` (largest
    remainder), never more than a group's remaining ``capacity``."""
    total = sum(sizes.values())
    quota = {k: target * n / total for k, n in sizes.items()}
    share = {k: min(int(quota[k]), capacity[k]) for k in sizes}
    order = sorted(sizes, key=lambda k: (-(quota[k] - int(quota[k])), k))
    while sum(share.values()) < target:
        open_groups = [k for k in order if share[k] < capacity[k]]
        if not open_groups:
            break
        for k in open_groups[: target - sum(share.values())]:
            share[k] += 1
    return share


def _stratum(utterances: Sequence[Utterance]) -> str:
    return "+".join(sorted({u.spk_id for u in utterances}))


def split_by_sentence(utterances: Sequence[Utterance], config: FilletsConfig) -> tuple[dict[str, list[Utterance]], list[dict[str, str]]]:
    """The utterances of each split, drawn by sentence and per speaker group (a sentence said by both
    speakers is a group of its own), deterministic for ``config.seed``; plus the sentences moved into
    labeled for the alphabet (see :attr:`FilletsConfig.labeled_covers_alphabet`)."""
    by_text: dict[str, list[Utterance]] = defaultdict(list)
    for utt in utterances:
        by_text[utt.reference or ""].append(utt)
    groups: dict[str, list[str]] = defaultdict(list)
    for text in sorted(by_text):
        groups[_stratum(by_text[text])].append(text)
    rng = random.Random(config.seed)
    pools = {k: rng.sample(texts, len(texts)) for k, texts in sorted(groups.items())}
    sizes = {k: len(v) for k, v in pools.items()}
    total = sum(sizes.values())
    targets = {name: _size(getattr(config, name), total) for name in ("dev", "test", "labeled", "unlabeled")}
    if sum(t for t in targets.values() if t) > total:
        raise ConfigError(f"the split sizes {targets} ask for more than the {total} sentences there are")
    chosen: dict[str, list[str]] = {}
    for name, target in targets.items():
        capacity = {k: len(v) for k, v in pools.items()}
        share = capacity if target is None else _allocate(target, capacity, sizes)
        chosen[name] = [text for k in pools for text in pools[k][: share[k]]]
        pools = {k: v[share[k]:] for k, v in pools.items()}
    moved = _cover_alphabet(chosen) if config.labeled_covers_alphabet else []
    return {name: [u for text in sorted(chosen[name]) for u in by_text[text]] for name in SPLITS}, moved


def _cover_alphabet(chosen: dict[str, list[str]]) -> list[dict[str, str]]:
    """Move into labeled one sentence for each character of the corpus labeled lacks."""
    moved = []
    every = sorted(set("".join(t for texts in chosen.values() for t in texts)) - {" "})
    for char in every:
        if any(char in text for text in chosen["labeled"]):
            continue
        for origin in ("unlabeled", "dev", "test"):
            text = next((t for t in chosen[origin] if char in t), None)
            if text is not None:
                chosen[origin].remove(text)
                chosen["labeled"].append(text)
                moved.append({"sentence": text, "character": char, "from": origin})
                break
    return moved


def _valid_wav_seconds(path: Path, sample_rate: int) -> float | None:
    """The duration of a complete mono WAV at ``sample_rate`` already at ``path``; None to (re)convert."""
    from selftrain.data.audio import audio_info

    try:
        info = audio_info(path)
    except AudioError:
        return None
    usable = not info.truncated and info.sample_rate == sample_rate and info.channels == 1 and info.frames > 0
    return info.duration if usable else None


def _convert(source: Path, dest: Path, sample_rate: int) -> float:
    """Decode ``source``, mix to mono, resample (torchaudio) and write 16-bit PCM atomically."""
    import soundfile as sf

    from selftrain.data.audio import load_audio_converted
    from selftrain.io import atomic_write

    wav, _ = load_audio_converted(source, sample_rate)
    with atomic_write(dest, "wb") as handle:
        sf.write(handle, wav.clamp(-1.0, 1.0).numpy(), sample_rate, format="WAV", subtype="PCM_16")
    return len(wav) / sample_rate


def _audio_rows(items: Sequence[tuple[DialogLine, Path]], out: Path, config: FilletsConfig, dropped: list[DroppedLine],
                counts: Counter[str], formats: Counter[str], progress: bool) -> list[Utterance]:
    """One utterance per line, its WAV converted unless a valid one is there; unreadable clips dropped.
    ``counts``: WAVs converted and reused; ``formats``: the source clips' rates and channels."""
    from tqdm import tqdm

    from selftrain.data.audio import audio_info

    for stale in out.glob("wav/*/.*.tmp"):  # half-written files of an interrupted run
        stale.unlink(missing_ok=True)
    rows = []
    for line, source in tqdm(items, desc="fillets", unit="clip", disable=not progress):
        dest = out / "wav" / line.level / f"{line.dialog_id}.wav"
        try:
            info = audio_info(source)
            seconds = _valid_wav_seconds(dest, config.sample_rate)
            if seconds is None:
                seconds = _convert(source, dest, config.sample_rate)
                counts["converted"] += 1
            else:
                counts["reused"] += 1
        except AudioError as exc:
            dropped.append(DroppedLine(line.id, f"audio_{exc.reason}", str(exc)))
            continue
        formats[f"{info.sample_rate} Hz, {info.channels} ch"] += 1
        rows.append(Utterance(id=line.id, wav=str(dest), duration=round(seconds, 3), spk_id=line.font,
                              reference=normalize_line(line.text), extra={"level": line.level}))
    return rows


def _split_stats(rows: Sequence[Utterance]) -> SplitStats:
    count: Counter[str] = Counter(u.spk_id for u in rows)
    seconds: defaultdict[str, float] = defaultdict(float)
    for utt in rows:
        seconds[utt.spk_id] += utt.duration
    return SplitStats(
        utterances=len(rows), sentences=len({u.reference for u in rows}),
        hours=round(sum(u.duration for u in rows) / 3600, 4), utterances_by_speaker=dict(sorted(count.items())),
        hours_by_speaker={k: round(v / 3600, 4) for k, v in sorted(seconds.items())},
        characters=_characters(rows),
    )


def _characters(rows: Sequence[Utterance]) -> str:
    """The characters of the rows' transcripts but the space, sorted."""
    return "".join(sorted(set("".join(u.reference or "" for u in rows)) - {" "}))


def _lm_sentences(splits: Mapping[str, Sequence[Utterance]], extra: str) -> list[str]:
    """The labeled sentences, plus ``extra``'s normalised lines that no other split says."""
    held_out = {u.reference for name in ("unlabeled", "dev", "test") for u in splits[name]}
    sentences = {u.reference or "" for u in splits["labeled"]}
    if extra:
        try:
            lines: Iterable[str] = Path(extra).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CorpusError(f"cannot read lm_extra {extra}: {exc}") from exc
        sentences.update(normalize_line(line) for line in lines)
    return sorted(s for s in sentences - held_out if s)


def _write(out: Path, splits: Mapping[str, list[Utterance]], lm_text: Sequence[str], corpus: FilletsCorpus,
           config: FilletsConfig) -> None:
    from selftrain.data.manifest import write_speechbrain_csv
    from selftrain.io import atomic_write_json, atomic_write_text

    for name in ("labeled", "dev", "test"):
        write_speechbrain_csv(splits[name], out / f"{name}.csv")
    write_speechbrain_csv(splits["unlabeled"], out / "unlabeled_reference.csv")
    write_speechbrain_csv([replace(u, reference=None) for u in splits["unlabeled"]], out / "unlabeled.csv")
    atomic_write_text(out / "lm_text.txt", "".join(f"{line}\n" for line in lm_text))
    atomic_write_json(out / "corpus.json", {"config": asdict(config), **corpus.to_dict()})


def prepare_fillets(config: FilletsConfig, out_dir: str | Path, progress: bool = True) -> FilletsCorpus:
    """Write the manifests, WAVs, LM text and ``corpus.json`` of ``config``'s dialogs into ``out_dir``.

    Resumable: a valid WAV already in ``out_dir`` is kept, every file is written atomically, and the
    manifests depend only on the installed data and ``config``. Raises :class:`CorpusError` when the
    game data is not installed, :class:`ConfigError` for split sizes that do not fit.
    """
    root, out = Path(config.root), Path(out_dir)
    dropped: list[DroppedLine] = []
    items, num_lines, duplicates, orphans = usable_lines(root, config.lang, dropped)
    counts: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    rows = _audio_rows(items, out, config, dropped, counts, formats, progress)
    if not rows:
        raise CorpusError(f"no usable dialog line in {root} for language '{config.lang}'")
    splits, moved = split_by_sentence(rows, config)
    lm_text = _lm_sentences(splits, config.lm_extra)
    corpus = FilletsCorpus(
        out_dir=str(out), splits={name: _split_stats(splits[name]) for name in SPLITS},
        alphabet=_characters(rows), dialog_lines=num_lines,
        dropped=dict(sorted(Counter(d.reason for d in dropped).items())), dropped_lines=dropped,
        duplicate_clips=duplicates, clips_without_text=orphans, moved_for_alphabet=moved, lm_sentences=len(lm_text),
        source_formats=dict(sorted(formats.items())),
        converted=counts["converted"], reused=counts["reused"],
    )
    _write(out, splits, lm_text, corpus, config)
    return corpus
