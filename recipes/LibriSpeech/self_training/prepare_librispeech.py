#!/usr/bin/env python3
"""SpeechBrain CSVs for self-training from a LibriSpeech folder (and Libri-Light's 10 h labeled split).

A split is a folder under the LibriSpeech root, e.g. ``train-clean-100``, or Libri-Light's
limited-resource set ``librispeech_finetuning`` (its ``1h/{0..5}/{clean,other}`` and
``9h/{clean,other}`` subfolders are found too: every ``<speaker>-<chapter>.trans.txt`` below a split
is read, with the ``<speaker>-<chapter>-<utt>.flac`` files beside it). Written to ``save_folder``:

    labeled.csv                transcribed training audio (the labeled splits)
    unlabeled.csv              the unlabeled splits with an empty ``wrd`` (labeled utterances left out)
    unlabeled_reference.csv    the same rows with their transcripts, for audits (and labels: oracle)
    dev.csv, test.csv          the dev and test splits together; <split>.csv for each of them too
    prepare.json               options, counts, hours and every skipped file with its reason

A missing, unreadable or empty audio file, or a transcript line without audio, is skipped and
reported, never fatal. When ``prepare.json`` exists with the same options the folder is kept as it
is (``force`` redoes it).

    python prepare_librispeech.py LIBRISPEECH_ROOT OUT --labeled train-clean-100 \\
        --unlabeled train-clean-360 --unlabeled train-other-500
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import soundfile as sf

from selftrain.data.manifest import write_speechbrain_csv
from selftrain.errors import ManifestError
from selftrain.io import atomic_write_json
from selftrain.record import Utterance

__all__ = ["PrepOptions", "PrepReport", "read_transcripts", "scan_split", "is_prepared", "prepare_librispeech"]

logger = logging.getLogger(__name__)
AUDIO_SUFFIX = ".flac"
TRANSCRIPT_GLOB = "*.trans.txt"
REPORT_FILE = "prepare.json"


@dataclass(frozen=True)
class PrepOptions:
    """Which splits play which role (folder names under the LibriSpeech root)."""

    labeled: tuple[str, ...] = ("train-clean-100",)
    unlabeled: tuple[str, ...] = ("train-clean-360", "train-other-500")
    dev: tuple[str, ...] = ("dev-clean", "dev-other")
    test: tuple[str, ...] = ("test-clean", "test-other")


@dataclass
class PrepReport:
    """What :func:`prepare_librispeech` wrote: utterances and hours per CSV, and the skipped files."""

    options: dict[str, list[str]]
    utterances: dict[str, int] = field(default_factory=dict)
    hours: dict[str, float] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    labeled_left_out_of_unlabeled: int = 0


def read_transcripts(path: Path) -> dict[str, str]:
    """``<utt-id> WORDS ...`` lines of a ``.trans.txt`` file -> ``{utt_id: words}``.

    Raises :class:`ManifestError` on a line without words or an id that repeats.
    """
    transcripts: dict[str, str] = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        utt_id, _, words = line.strip().partition(" ")
        if not words.strip() or utt_id in transcripts:
            raise ManifestError(f"{path}:{line_no}: expected a new '<utterance-id> WORDS' line, got {line!r}")
        transcripts[utt_id] = " ".join(words.split())
    return transcripts


def _audio_duration(path: Path) -> float:
    """Seconds of audio in ``path``; raises :class:`ManifestError` when it cannot be used."""
    if not path.is_file():
        raise ManifestError("missing audio")
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise ManifestError(f"unreadable audio ({exc})") from exc
    if info.frames <= 0 or info.samplerate <= 0:
        raise ManifestError("empty audio")
    return info.frames / info.samplerate


def scan_split(split_dir: Path, skipped: list[dict[str, str]]) -> Iterator[Utterance]:
    """Every usable utterance below ``split_dir``, in a stable order; the others go to ``skipped``."""
    if not split_dir.is_dir():
        raise ManifestError(f"split folder not found: {split_dir}")
    for transcript_file in sorted(split_dir.rglob(TRANSCRIPT_GLOB)):
        try:
            transcripts = read_transcripts(transcript_file)
        except (ManifestError, UnicodeDecodeError) as exc:
            skipped.append({"file": str(transcript_file), "reason": f"bad transcript file: {exc}"})
            continue
        for utt_id, words in transcripts.items():
            audio = transcript_file.parent / f"{utt_id}{AUDIO_SUFFIX}"
            try:
                duration = _audio_duration(audio)
            except ManifestError as exc:
                skipped.append({"file": str(audio), "reason": str(exc)})
                continue
            yield Utterance(id=utt_id, wav=str(audio.resolve()), duration=round(duration, 3),
                            spk_id=utt_id.split("-")[0], reference=words)


def _scan(root: Path, splits: Sequence[str], skipped: list[dict[str, str]]) -> list[Utterance]:
    utterances = [u for split in splits for u in scan_split(root / split, skipped)]
    seen: set[str] = set()
    unique = []
    for utt in utterances:
        if utt.id in seen:
            skipped.append({"file": utt.wav, "reason": "duplicate utterance id"})
            continue
        seen.add(utt.id)
        unique.append(utt)
    return unique


def _write(name: str, utterances: list[Utterance], save_folder: Path, report: PrepReport) -> None:
    write_speechbrain_csv(utterances, save_folder / f"{name}.csv")
    report.utterances[name] = len(utterances)
    report.hours[name] = round(sum(u.duration for u in utterances) / 3600, 4)


def _options_dict(options: PrepOptions) -> dict[str, list[str]]:
    return {role: list(splits) for role, splits in asdict(options).items()}


def is_prepared(save_folder: str | Path, options: PrepOptions) -> bool:
    """Whether ``save_folder`` already holds this preparation (its report, with the same options)."""
    report_path = Path(save_folder) / REPORT_FILE
    if not report_path.is_file():
        return False
    return json.loads(report_path.read_text(encoding="utf-8")).get("options") == _options_dict(options)


def prepare_librispeech(data_folder: str | Path, save_folder: str | Path, options: PrepOptions | None = None,
                        force: bool = False) -> PrepReport:
    """Write the self-training CSVs of ``options``' splits of ``data_folder`` into ``save_folder``."""
    options = options or PrepOptions()
    root, save_folder = Path(data_folder), Path(save_folder)
    if not options.labeled or not options.dev:
        raise ManifestError("at least one labeled split and one dev split are needed")
    if is_prepared(save_folder, options) and not force:
        logger.info("%s is already prepared; skipping (force redoes it)", save_folder)
        return PrepReport(**json.loads((save_folder / REPORT_FILE).read_text(encoding="utf-8")))
    report = PrepReport(options=_options_dict(options))
    labeled = _scan(root, options.labeled, report.skipped)
    labeled_ids = {u.id for u in labeled}
    scanned = _scan(root, options.unlabeled, report.skipped)
    unlabeled = [u for u in scanned if u.id not in labeled_ids]  # e.g. Libri-Light 10 h inside LibriSpeech 960 h
    report.labeled_left_out_of_unlabeled = len(scanned) - len(unlabeled)
    _write("labeled", labeled, save_folder, report)
    _write("unlabeled_reference", unlabeled, save_folder, report)
    _write("unlabeled", [Utterance(u.id, u.wav, u.duration, u.spk_id) for u in unlabeled], save_folder, report)
    for role in ("dev", "test"):
        splits = getattr(options, role)
        if not splits:
            continue
        together = []
        for split in splits:
            rows = _scan(root, [split], report.skipped)
            _write(split, rows, save_folder, report)
            together.extend(rows)
        _write(role, together, save_folder, report)
    for item in report.skipped:
        logger.warning("skipped %s: %s", item["file"], item["reason"])
    atomic_write_json(save_folder / REPORT_FILE, asdict(report))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``prepare_librispeech.py ROOT OUT [--labeled S ...] [--unlabeled S ...] [--force]``."""
    defaults = PrepOptions()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_folder", help="LibriSpeech root (holding train-clean-100/, dev-clean/, ...)")
    parser.add_argument("save_folder", help="where the CSVs and prepare.json go")
    for role in ("labeled", "unlabeled", "dev", "test"):
        parser.add_argument(f"--{role}", action="append", default=None, metavar="SPLIT",
                            help=f"a {role} split, repeatable (default: {' '.join(getattr(defaults, role))})")
    parser.add_argument("--force", action="store_true", help="redo a folder that is already prepared")
    args = parser.parse_args(argv)
    options = PrepOptions(**{role: tuple(getattr(args, role) or getattr(defaults, role))
                             for role in ("labeled", "unlabeled", "dev", "test")})
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        report = prepare_librispeech(args.data_folder, args.save_folder, options, force=args.force)
    except ManifestError as exc:
        parser.exit(2, f"error: {exc}\n")
    print(json.dumps({"utterances": report.utterances, "hours": report.hours, "skipped": len(report.skipped)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
