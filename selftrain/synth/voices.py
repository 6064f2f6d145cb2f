"""Voices: thin wrappers over the espeak-ng, flite and festival command-line synthesizers.

A voice is written ``engine:name``: ``espeak:en-us+m3`` (espeak-ng voice and variant),
``flite:awb`` (a flite built-in voice), ``festival:kal`` (festival's ``voice_kal_diphone``).
festival is driven in batches (one ``festival -b`` script renders many utterances: starting festival
costs far more than synthesizing a sentence).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from selftrain.synth.errors import MissingToolError, SynthError

__all__ = ["Voice", "check_tools", "synthesize", "synthesize_festival_batch", "tool_versions"]

# Debian package that provides each engine's binary.
PACKAGES = {"espeak": "espeak-ng", "flite": "flite", "festival": "festival", "sox": "sox"}
BINARIES = {"espeak": "espeak-ng", "flite": "flite", "festival": "festival", "sox": "sox"}
FESTIVAL_VOICE_PACKAGES = {"kal": "festvox-kallpc16k", "ked": "festvox-kdlpc16k"}
FESTIVAL_VOICE_DIRS = ("/usr/share/festival/voices/english", "/usr/lib/festival/voices/english")
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Voice:
    """A synthesizer voice; ``str(voice)`` is the ``engine:name`` spelling used as ``spk_id``."""

    engine: str
    name: str

    @classmethod
    def parse(cls, spec: str) -> Voice:
        """Parse ``engine:name`` (e.g. ``espeak:en-gb-scotland+m2``)."""
        engine, _, name = spec.partition(":")
        if engine not in PACKAGES or engine == "sox" or not name:
            raise SynthError(f"bad voice {spec!r}: expected espeak:NAME, flite:NAME or festival:NAME")
        return cls(engine, name)

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}"


def check_tools(voices: Iterable[Voice]) -> None:
    """Raise :class:`MissingToolError` naming the Debian package when a needed program or voice is absent."""
    needed = {"sox", *(v.engine for v in voices)}
    for engine in sorted(needed):
        if shutil.which(BINARIES[engine]) is None:
            raise MissingToolError(f"'{BINARIES[engine]}' not found on PATH", PACKAGES[engine])
    for voice in voices:
        if voice.engine == "festival" and not _festival_voice_installed(voice.name):
            package = FESTIVAL_VOICE_PACKAGES.get(voice.name, f"the festival voice {voice.name}_diphone")
            raise MissingToolError(f"festival voice '{voice.name}_diphone' not installed", package)
        if voice.engine == "flite" and voice.name not in _flite_voices():
            raise SynthError(
                f"flite has no voice {voice.name!r} (it has: {' '.join(sorted(_flite_voices()))})"
            )
    if any(v.engine == "sox" for v in voices):
        raise SynthError("sox is not a voice")


def _festival_voice_installed(name: str) -> bool:
    return any(Path(d, f"{name}_diphone").is_dir() for d in FESTIVAL_VOICE_DIRS)


def _flite_voices() -> set[str]:
    result = subprocess.run(["flite", "-lv"], capture_output=True, text=True, timeout=TIMEOUT_S)
    listing = result.stdout.partition(":")[2] if ":" in result.stdout else result.stdout
    return set(listing.split())


def tool_versions() -> dict[str, str]:
    """First line of each tool's version output (recorded in ``corpus.json``)."""
    commands = {
        "espeak-ng": ["espeak-ng", "--version"],
        "flite": ["flite", "--version"],
        "sox": ["sox", "--version"],
        "festival": ["festival", "--version"],
    }
    versions = {}
    for name, command in commands.items():
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
            lines = [line.strip() for line in (result.stdout or result.stderr).splitlines() if line.strip()]
            versioned = [line for line in lines if re.search(r"\d+\.\d+", line)]
            versions[name] = (versioned or lines or [""])[0]
        except (OSError, subprocess.SubprocessError):
            versions[name] = "not installed"
    return versions


def _run(command: Sequence[str], stdin: str | None = None, timeout: float = TIMEOUT_S) -> None:
    try:
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SynthError(f"{command[0]} failed: {exc}") from exc
    if result.returncode != 0:
        raise SynthError(f"{command[0]} exited with {result.returncode}: {result.stderr.strip()[-300:]}")


def synthesize(voice: Voice, text: str, out: str | Path) -> None:
    """Render ``text`` with ``voice`` into the WAV file ``out`` (the engine's own sample rate)."""
    out = str(out)
    if voice.engine == "espeak":
        _run(["espeak-ng", "-v", voice.name, "-w", out, "--stdin"], stdin=text)
    elif voice.engine == "flite":
        _run(["flite", "-voice", voice.name, "-t", text, "-o", out])
    else:
        synthesize_festival_batch(voice, [(text, out)])
    if not Path(out).is_file() or Path(out).stat().st_size <= 44:
        raise SynthError(f"{voice} wrote no audio for {text!r}")


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def synthesize_festival_batch(voice: Voice, items: Sequence[tuple[str, str | Path]]) -> None:
    """Render many ``(text, out_path)`` pairs with one festival process (failed items leave no file)."""
    if voice.engine != "festival":
        raise SynthError(f"{voice} is not a festival voice")
    lines = [f"(voice_{voice.name}_diphone)"]
    for text, out in items:
        # unwind-protect: one bad utterance must not stop the batch.
        lines.append(
            f"(unwind-protect (utt.save.wave (utt.synth (Utterance Text {_scheme_string(text)})) "
            f"{_scheme_string(str(out))} 'riff) nil)"
        )
    script = "\n".join(lines) + "\n"
    _run(["festival", "--pipe"], stdin=script, timeout=TIMEOUT_S + 5.0 * len(items))
