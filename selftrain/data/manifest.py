"""Manifests: SpeechBrain CSV (the native format), NeMo JSON-lines and Kaldi data directories.

Every reader returns :class:`~selftrain.record.Utterance` records with absolute audio paths
(relative paths are resolved against the manifest's folder) and ``reference=None`` for unlabeled
rows; every writer is atomic and writes paths relative to the output's folder when they lie below it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from selftrain.errors import ManifestError
from selftrain.io import atomic_write
from selftrain.record import Utterance

__all__ = [
    "read_manifest",
    "iter_manifest",
    "ManifestStream",
    "write_manifest",
    "read_speechbrain_csv",
    "write_speechbrain_csv",
    "speechbrain_fields",
    "read_nemo_jsonl",
    "write_nemo_jsonl",
    "read_kaldi_dir",
    "write_kaldi_dir",
]

SPEECHBRAIN_COLUMNS = ["ID", "duration", "wav", "spk_id", "wrd"]


def read_manifest(path: str | Path) -> list[Utterance]:
    """Read a manifest, choosing the format from the path: ``.csv``, ``.json``/``.jsonl`` or a Kaldi dir."""
    return list(iter_manifest(path))


def iter_manifest(path: str | Path) -> Iterator[Utterance]:
    """The rows of a manifest one at a time, in file order (what :func:`read_manifest` returns, without
    holding them all). CSV and JSON-lines files are read as a stream; a Kaldi dir is read whole
    (its tables are separate files, and its rows come sorted by ID). A missing file or unknown
    format is refused at once, before the first row is asked for."""
    path = Path(path)
    if path.is_dir():
        return iter(read_kaldi_dir(path))
    if not path.exists():
        raise ManifestError(f"manifest not found: {path}")
    if path.suffix == ".csv":
        return iter_speechbrain_csv(path)
    if path.suffix in (".json", ".jsonl"):
        return iter_nemo_jsonl(path)
    raise ManifestError(f"unknown manifest format for {path} (expected .csv, .jsonl or a Kaldi dir)")


class ManifestStream:
    """A manifest that is read row by row each time it is iterated, never held whole.

    Creating it reads the file once to count and check every row, so a malformed row is refused
    before any work starts, as with :func:`read_manifest`.

    >>> rows = ManifestStream("unlabeled.csv")  # doctest: +SKIP
    >>> len(rows), next(iter(rows)).id          # doctest: +SKIP
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._rows = sum(1 for _ in iter_manifest(self.path))

    def __len__(self) -> int:
        return self._rows

    def __iter__(self) -> Iterator[Utterance]:
        return iter_manifest(self.path)


def write_manifest(utterances: Iterable[Utterance], path: str | Path, use_pseudo_labels: bool = False) -> None:
    """Write a manifest in the format its path implies (see :func:`read_manifest`)."""
    path = Path(path)
    if path.suffix == ".csv":
        write_speechbrain_csv(utterances, path, use_pseudo_labels)
    elif path.suffix in (".json", ".jsonl"):
        write_nemo_jsonl(utterances, path, use_pseudo_labels)
    else:
        write_kaldi_dir(utterances, path, use_pseudo_labels)


def _resolve(wav: str, base: Path) -> str:
    wav_path = Path(wav).expanduser()
    return str(wav_path if wav_path.is_absolute() else (base / wav_path).resolve())


def _relative(wav: str, base: Path) -> str:
    try:
        return str(Path(wav).resolve().relative_to(base.resolve()))
    except ValueError:
        return wav


def _text_or_none(text: str | None) -> str | None:
    return text if text else None


def _parse_duration(value: str | float | None, where: str) -> float:
    try:
        duration = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"{where}: duration {value!r} is not a number") from exc
    if duration != duration or duration < 0:  # NaN or negative
        raise ManifestError(f"{where}: duration {value!r} is not a non-negative number")
    return duration


def _label(utt: Utterance, use_pseudo_labels: bool) -> str:
    text = utt.pseudo_label if use_pseudo_labels else utt.reference
    return text or ""


def read_speechbrain_csv(path: str | Path) -> list[Utterance]:
    """Read a SpeechBrain CSV (``ID,duration,wav,spk_id,wrd`` plus any extra columns)."""
    return list(iter_speechbrain_csv(path))


def iter_speechbrain_csv(path: str | Path) -> Iterator[Utterance]:
    """The rows of a SpeechBrain CSV one at a time (see :func:`read_speechbrain_csv`)."""
    path = Path(path)
    base = path.parent
    try:
        # surrogateescape: a row with undecodable bytes is read anyway and flagged by `data check`
        # (reason "encoding") instead of making the whole manifest unreadable.
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
            reader = csv.DictReader(handle)
            missing = {"ID", "wav"} - set(reader.fieldnames or [])
            if missing:
                raise ManifestError(f"{path}: missing column(s) {sorted(missing)}")
            for line_no, row in enumerate(reader, start=2):
                where = f"{path}:{line_no}"
                if None in row:
                    raise ManifestError(f"{where}: more fields than columns")
                extra = {k: v for k, v in row.items() if k not in SPEECHBRAIN_COLUMNS}
                yield Utterance(
                    id=row["ID"],
                    wav=_resolve(row["wav"], base),
                    duration=_parse_duration(row.get("duration") or 0.0, where),
                    spk_id=row.get("spk_id") or "",
                    reference=_text_or_none(row.get("wrd")),
                    extra=extra,
                )
    except csv.Error as exc:
        raise ManifestError(f"{path}: malformed CSV ({exc})") from exc


def write_speechbrain_csv(utterances: Iterable[Utterance], path: str | Path, use_pseudo_labels: bool = False) -> None:
    """Write a SpeechBrain CSV; ``use_pseudo_labels`` puts ``pseudo_label`` instead of the reference in ``wrd``."""
    path = Path(path)
    utterances = list(utterances)
    extra_columns = sorted({k for u in utterances for k in u.extra})
    with atomic_write(path, newline="", errors="surrogateescape") as handle:
        writer = csv.writer(handle)
        writer.writerow(SPEECHBRAIN_COLUMNS + extra_columns)
        for utt in utterances:
            writer.writerow(speechbrain_fields(utt, path.parent, use_pseudo_labels) + [utt.extra.get(k, "") for k in extra_columns])


def speechbrain_fields(utt: Utterance, base: Path, use_pseudo_labels: bool = False) -> list[str]:
    """The :data:`SPEECHBRAIN_COLUMNS` of ``utt``'s row in a CSV written in folder ``base``."""
    return [utt.id, f"{utt.duration:.3f}", _relative(utt.wav, base), utt.spk_id, _label(utt, use_pseudo_labels)]


def read_nemo_jsonl(path: str | Path) -> list[Utterance]:
    """Read a NeMo manifest (see :func:`iter_nemo_jsonl`)."""
    return list(iter_nemo_jsonl(path))


def iter_nemo_jsonl(path: str | Path) -> Iterator[Utterance]:
    """The rows of a NeMo manifest one at a time (one JSON object per line: ``audio_filepath``, ``duration``, ``text``).

    The ID is ``utt_id`` (or ``id``) when given, else the audio file's stem, numbered (``x``, ``x-1``)
    when stems repeat. Given IDs are kept as written, so a repeated one is reported by the checks.
    """
    path = Path(path)
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                row = json.loads(line)
                audio = row["audio_filepath"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ManifestError(f"{where}: not a NeMo manifest line ({exc})") from exc
            given = row.get("utt_id") or row.get("id")
            utt_id = str(given or Path(audio).stem)
            if not given and utt_id in seen:  # NeMo has no ID column: keep file-stem IDs unique
                seen[utt_id] += 1
                utt_id = f"{utt_id}-{seen[utt_id]}"
            else:
                seen.setdefault(utt_id, 0)
            known = {"audio_filepath", "duration", "text", "utt_id", "id", "speaker"}
            yield Utterance(
                id=utt_id,
                wav=_resolve(audio, path.parent),
                duration=_parse_duration(row.get("duration", 0.0), where),
                spk_id=str(row.get("speaker", "")),
                reference=_text_or_none(row.get("text")),
                extra={k: str(v) for k, v in row.items() if k not in known},
            )


def write_nemo_jsonl(utterances: Iterable[Utterance], path: str | Path, use_pseudo_labels: bool = False) -> None:
    """Write a NeMo JSON-lines manifest (absolute audio paths, as NeMo expects)."""
    with atomic_write(path, errors="surrogateescape") as handle:
        for utt in utterances:
            row = {"audio_filepath": utt.wav, "duration": round(utt.duration, 3), "text": _label(utt, use_pseudo_labels), "utt_id": utt.id}
            if utt.spk_id:
                row["speaker"] = utt.spk_id
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_kaldi_table(path: Path) -> dict[str, list[str]]:
    """Each key's values in file order (a repeated key keeps every value; see :func:`read_kaldi_dir`)."""
    table: dict[str, list[str]] = {}
    if not path.exists():
        return table
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            key, _, value = line.partition(" ")
            table.setdefault(key, []).append(value.strip())
    return table


def _nth(table: dict[str, list[str]], key: str, n: int, default: str | None = None) -> str | None:
    values = table.get(key)
    return values[min(n, len(values) - 1)] if values else default


def read_kaldi_dir(directory: str | Path) -> list[Utterance]:
    """Read a Kaldi data dir: ``wav.scp`` (plain paths only), optional ``text``, ``utt2spk``, ``utt2dur``.

    Rows come sorted by ID. A repeated ID in ``wav.scp`` gives one row per line (the n-th takes the
    n-th ``text``/``utt2spk``/``utt2dur`` value of that ID), so the checks report it as ``duplicate_id``
    instead of the whole folder being refused.
    """
    directory = Path(directory)
    wav_scp = _read_kaldi_table(directory / "wav.scp")
    if not wav_scp:
        raise ManifestError(f"{directory}: no wav.scp (or it is empty)")
    piped = [k for k, values in wav_scp.items() if any(v.endswith("|") for v in values)]
    if piped:
        raise ManifestError(f"{directory}/wav.scp: piped commands are not supported (e.g. {piped[0]}); extract the audio first")
    text = _read_kaldi_table(directory / "text")
    utt2spk = _read_kaldi_table(directory / "utt2spk")
    utt2dur = _read_kaldi_table(directory / "utt2dur")
    return [
        Utterance(
            id=utt_id,
            wav=_resolve(wav, directory),
            duration=_parse_duration(_nth(utt2dur, utt_id, n, "0"), f"{directory}/utt2dur:{utt_id}"),
            spk_id=_nth(utt2spk, utt_id, n, "") or "",
            reference=_text_or_none(_nth(text, utt_id, n)),
        )
        for utt_id, wavs in sorted(wav_scp.items())
        for n, wav in enumerate(wavs)
    ]


def write_kaldi_dir(utterances: Iterable[Utterance], directory: str | Path, use_pseudo_labels: bool = False) -> None:
    """Write ``wav.scp``, ``text`` (labeled rows only), ``utt2spk`` and ``utt2dur``, sorted by ID as Kaldi requires."""
    directory = Path(directory)
    rows = sorted(utterances, key=lambda u: u.id)
    tables = {
        "wav.scp": [f"{u.id} {u.wav}" for u in rows],
        "text": [f"{u.id} {_label(u, use_pseudo_labels)}" for u in rows if _label(u, use_pseudo_labels)],
        "utt2spk": [f"{u.id} {u.spk_id or u.id}" for u in rows],
        "utt2dur": [f"{u.id} {u.duration:.3f}" for u in rows],
    }
    for name, lines in tables.items():
        with atomic_write(directory / name, errors="surrogateescape") as handle:
            handle.write("".join(line + "\n" for line in lines))
