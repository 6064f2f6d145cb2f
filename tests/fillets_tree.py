"""A fake Fish Fillets NG data folder in the Debian packages' layout, for ``data prepare fillets`` tests.

``script/<level>/dialogs_<lang>.lua`` with ``dialogId``/``dialogStr`` pairs and
``sound/<level>/<lang>/<id>.ogg`` Vorbis clips (noisy tones at the game's 22.05 kHz stereo, one at
44.1 kHz mono), with the package's oddities: lines with digits and a format string, a line without
a recording, a ``dialogId`` without ``dialogStr``, a recording no line names, a clip that repeats
another's bytes, typographic quotes and é ë ï.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

# (level, id, font, Dutch line) of the lines that get a recording; words chosen so that sentences
# repeat within and across speakers.
_WORDS = ["vis", "schip", "zee", "kist", "steen", "glas", "pijp", "kreeft", "slak", "deur"]
SPOKEN: list[tuple[str, str, str, str]] = [
    ("alpha", "a-m-quote", "font_small", "“Zo’n schip?” Dat is ’s morgens Één ideeën-ding!"),
    ("alpha", "a-v-geinoemd", "font_big", "Een ongeïdentificeerd ding, vermoed ik."),
    ("alpha", "a-v-digits", "font_big", "Dat is de Poseidon 737."),
    ("alpha", "a-m-format", "font_small", "Het heeft je %1 uur gekost!"),
    *(("beta", f"b-{'m' if i % 2 else 'v'}-{i}", "font_small" if i % 2 else "font_big",
       f"De {_WORDS[i % 10]} en de {_WORDS[(i * 3) % 10]}.") for i in range(24)),
    *(("gamma", f"g-m-{i}", "font_small", f"Nog een {_WORDS[i]}, zei de vis.") for i in range(10)),
    *(("gamma", f"g-v-{i}", "font_big", f"Nog een {_WORDS[i]}, zei de vis.") for i in range(4)),
    ("gamma", "g-v-dubbel", "font_big", "Ik zeg het nog eens: café!"),
]
DUPLICATE = ("gamma", "g-m-kopie", "font_small", "Dit is een kopie.")  # its clip: a-m-quote's bytes
UNSPOKEN = ("alpha", "a-m-stil", "font_small", "Hier is geen opname van.")
NO_TEXT = ("alpha", "a-v-leeg", "font_big")
ORPHAN_CLIP = ("beta", "b-v-wees")
OTHER_LANGUAGE = "de"


def clip(seed: int, seconds: float = 0.3, rate: int = 22050, channels: int = 2) -> np.ndarray:
    """A noisy tone, ``[frames, channels]``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.3 * np.sin(2 * np.pi * (180 + 20 * seed) * t) + 0.01 * rng.standard_normal(len(t))
    return np.repeat(mono[:, None], channels, axis=1).astype(np.float32)


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_tree(root: Path, lang: str = "nl") -> Path:
    """The fake data folder under ``root`` (returned): dialogs and recordings in ``lang`` plus a
    dialog file of another language."""
    lines: dict[str, list[str]] = {}
    for index, (level, dialog_id, font, text) in enumerate([*SPOKEN, DUPLICATE, UNSPOKEN]):
        lines.setdefault(level, ["-- Init", 'dialogId("commented-out", "font_big", "no")']).append(
            f'dialogId("{dialog_id}", "{font}", "English {index}")\ndialogStr({_lua_string(text)})\n')
    lines["alpha"].append(f'dialogId("{NO_TEXT[1]}", "{NO_TEXT[2]}", "")\n')
    for level, entries in lines.items():
        folder = root / "script" / level
        folder.mkdir(parents=True, exist_ok=True)
        # The commented call is a comment line ("-- ..." prefix) in the file.
        text = "\n".join(entries).replace('dialogId("commented-out"', '-- dialogId("commented-out"')
        (folder / f"dialogs_{lang}.lua").write_text(text, encoding="utf-8")
        (folder / f"dialogs_{OTHER_LANGUAGE}.lua").write_text('dialogId("x", "font_big", "x")\ndialogStr("Hallo")\n')
    for index, (level, dialog_id, _, _) in enumerate(SPOKEN):
        folder = root / "sound" / level / lang
        folder.mkdir(parents=True, exist_ok=True)
        mono = dialog_id == "g-v-dubbel"
        audio = clip(index, rate=44100 if mono else 22050, channels=1 if mono else 2)
        sf.write(str(folder / f"{dialog_id}.ogg"), audio, 44100 if mono else 22050, format="OGG", subtype="VORBIS")
    source = root / "sound" / SPOKEN[0][0] / lang / f"{SPOKEN[0][1]}.ogg"
    (root / "sound" / DUPLICATE[0] / lang / f"{DUPLICATE[1]}.ogg").write_bytes(source.read_bytes())
    sf.write(str(root / "sound" / ORPHAN_CLIP[0] / lang / f"{ORPHAN_CLIP[1]}.ogg"), clip(99), 22050,
             format="OGG", subtype="VORBIS")
    return root
