"""``data prepare fillets``: parsing, normalisation, dropped lines, duplicates, splits, resuming, CLI."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
import soundfile as sf
from click.testing import CliRunner

from selftrain.cli import main
from selftrain.data.fillets import (
    SPLITS,
    FilletsConfig,
    drop_reason,
    normalize_line,
    prepare_fillets,
    read_dialogs,
    split_by_sentence,
)
from selftrain.data.manifest import read_manifest
from selftrain.errors import ConfigError, CorpusError
from selftrain.record import Utterance
from selftrain.text import TextNormalizer
from tests.fillets_tree import DUPLICATE, NO_TEXT, ORPHAN_CLIP, SPOKEN, UNSPOKEN, write_tree

SPLIT_FILES = {"labeled": "labeled.csv", "unlabeled": "unlabeled_reference.csv", "dev": "dev.csv", "test": "test.csv"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return write_tree(tmp_path_factory.mktemp("fillets") / "fillets-ng")


@pytest.fixture(scope="module")
def prepared(tree, tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("prepared") / "nl"
    return out, prepare_fillets(FilletsConfig(root=str(tree)), out, progress=False)


def _splits(out: Path) -> dict[str, list[Utterance]]:
    return {name: read_manifest(out / file) for name, file in SPLIT_FILES.items()}


def test_read_dialogs_parses_escapes_comments_and_missing_parts(tmp_path):
    lua = tmp_path / "dialogs_nl.lua"
    lua.write_text(
        '-- dialogId("in-a-comment", "font_big", "x")\n'
        'dialogId("one", "font_small", "Say \\"hi\\"")\ndialogStr("Zeg \\"hoi\\" in C:\\\\DOS en \\/etc")\n'
        "dialogId('two', 'font_big')\ndialogStr('Geen Engels hier')\n"
        'dialogId("three", "font_big", "lost")\n'
        'dialogId("four", "font_small", "x")  dialogStr("Op één regel")\n'
        'dialogId(name, "font_big", "x")\ndialogStr("Geen letterlijke id")\n',
        encoding="utf-8")
    dropped = []
    lines = read_dialogs(lua, "lvl", dropped)
    assert [(x.id, x.font, x.text, x.english) for x in lines] == [
        ("lvl-one", "font_small", 'Zeg "hoi" in C:\\DOS en /etc', 'Say "hi"'),
        ("lvl-two", "font_big", "Geen Engels hier", ""),
        ("lvl-four", "font_small", "Op één regel", "x"),
    ]
    assert [(d.id, d.reason) for d in dropped] == [("lvl-three", "no_text"), ("lvl-?", "unparsed")]


def test_normalisation_and_drop_reasons():
    assert normalize_line("“Zo’n schip?” Dat is ’s morgens Één ideeën-ding!") == "zo'n schip dat is s morgens één ideeën ding"
    assert normalize_line("Auto's, m'n 'ding' en z`n boot...") == "auto's m'n ding en z'n boot"
    assert normalize_line("Een ONGEÏDENTIFICEERD ding") == "een ongeïdentificeerd ding"
    for text in ("Het heeft je %1 uur gekost", "Je hebt %s punten", "Waarde {0}", "Nog %5.2f te gaan"):
        assert drop_reason(text) == "format_string", text
    for text in ("LC-10 Lemura", "druk op F2", "3Dfx"):
        assert drop_reason(text) == "digits", text
    assert drop_reason("?! ...") == "empty" and drop_reason("Honderd procent") is None
    # The tokenizer normalises transcripts again with its default normaliser: they must not change.
    sample = normalize_line("“Zo’n schip?” ’s Morgens: ideeën, café, geïnd.")
    assert TextNormalizer()(sample) == sample


def test_prepare_drops_lines_with_reasons_and_keeps_duplicate_clips_once(prepared):
    out, corpus = prepared
    assert corpus.dialog_lines == len(SPOKEN) + 2  # + the duplicate and the unrecorded line
    assert corpus.dropped == {"digits": 1, "duplicate_audio": 1, "format_string": 1, "no_audio": 1, "no_text": 1}
    reasons = {d.id: d.reason for d in corpus.dropped_lines}
    assert reasons[f"{DUPLICATE[0]}-{DUPLICATE[1]}"] == "duplicate_audio" and corpus.duplicate_clips == 1
    assert reasons[f"{UNSPOKEN[0]}-{UNSPOKEN[1]}"] == "no_audio" and reasons[f"{NO_TEXT[0]}-{NO_TEXT[1]}"] == "no_text"
    assert corpus.clips_without_text == [f"sound/{ORPHAN_CLIP[0]}/nl/{ORPHAN_CLIP[1]}.ogg"]
    rows = [u for split in _splits(out).values() for u in split]
    assert len(rows) == len(SPOKEN) - 2 == sum(s.utterances for s in corpus.splits.values())
    assert "commented-out" not in {u.id.split("-", 1)[1] for u in rows}
    quote = next(u for u in rows if u.id == "alpha-a-m-quote")
    assert quote.reference == "zo'n schip dat is s morgens één ideeën ding" and quote.spk_id == "font_small"
    assert corpus.source_formats == {"22050 Hz, 2 ch": len(rows) - 1, "44100 Hz, 1 ch": 1}
    for utt in rows:
        info = sf.info(utt.wav)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert utt.duration == pytest.approx(0.3, abs=0.01) and utt.extra["level"] == utt.id.split("-")[0]


def test_manifests_lm_text_and_corpus_json(prepared):
    out, corpus = prepared
    splits = _splits(out)
    unlabeled = read_manifest(out / "unlabeled.csv")
    assert [u.id for u in unlabeled] == [u.id for u in splits["unlabeled"]] and unlabeled
    assert all(u.reference is None for u in unlabeled) and all(u.reference for u in splits["unlabeled"])
    lm_lines = (out / "lm_text.txt").read_text(encoding="utf-8").splitlines()
    assert lm_lines == sorted({u.reference for u in splits["labeled"]})
    assert not set(lm_lines) & {u.reference for name in ("unlabeled", "dev", "test") for u in splits[name]}
    saved = json.loads((out / "corpus.json").read_text(encoding="utf-8"))
    assert saved["alphabet"] == "'acdefghijklmnoprstuvzéëï" == corpus.alphabet
    assert saved["config"]["seed"] == 0 and saved["lm_sentences"] == len(lm_lines)
    for name, rows in splits.items():
        stats = saved["splits"][name]
        assert stats["utterances"] == len(rows) and stats["sentences"] == len({u.reference for u in rows})
        assert stats["hours"] == pytest.approx(sum(u.duration for u in rows) / 3600, abs=1e-4)
        assert sum(stats["utterances_by_speaker"].values()) == len(rows)
        assert stats["characters"] == "".join(sorted(set("".join(u.reference for u in rows)) - {" "}))
    # The model's alphabet comes from the labeled text: it holds every character of the corpus.
    assert saved["splits"]["labeled"]["characters"] == corpus.alphabet
    assert {m["character"] for m in corpus.moved_for_alphabet} <= set(corpus.alphabet)


def _fake_rows() -> list[Utterance]:
    """60 sentences by speaker a, 30 by b, 10 by both; each said twice."""
    rows = []
    for i in range(100):
        speakers = ["a"] if i < 60 else ["b"] if i < 90 else ["a", "b"]
        for take, speaker in enumerate(speakers * (2 if len(speakers) == 1 else 1)):
            text = "zin " + "".join("abcdefghij"[int(d)] for d in f"{i:03d}")
            rows.append(Utterance(f"u{i}-{take}", f"/x/{i}-{take}.wav", 1.0, speaker, reference=text))
    return rows


def _sentences(splits) -> dict[str, set[str]]:
    return {name: {u.reference for u in rows} for name, rows in splits.items()}


def test_split_invariants_stratification_and_seeds():
    rows = _fake_rows()
    config = FilletsConfig(labeled=0.2, dev=0.1, test=0.1, labeled_covers_alphabet=False)
    splits, moved = split_by_sentence(rows, config)
    sentences = _sentences(splits)
    assert moved == [] and sum(len(s) for s in sentences.values()) == 100
    assert len(set.union(*sentences.values())) == 100  # no sentence in two splits ...
    assert sum(len(v) for v in splits.values()) == len(rows)  # ... and every take of it in its split
    assert {k: len(v) for k, v in sentences.items()} == {"labeled": 20, "unlabeled": 60, "dev": 10, "test": 10}
    groups: dict[str, set[str]] = defaultdict(set)
    for utt in rows:
        groups[utt.reference].add(utt.spk_id)
    for name, expected in {"labeled": (12, 6, 2), "dev": (6, 3, 1), "test": (6, 3, 1)}.items():
        mix = [sum(1 for s in sentences[name] if groups[s] == g) for g in ({"a"}, {"b"}, {"a", "b"})]
        assert tuple(mix) == expected, name  # each speaker group in proportion
    assert _sentences(split_by_sentence(list(reversed(rows)), config)[0]) == sentences  # order does not matter
    other = _sentences(split_by_sentence(rows, FilletsConfig(seed=1, labeled_covers_alphabet=False))[0])
    assert other != sentences and {k: len(v) for k, v in other.items()} == {k: len(v) for k, v in sentences.items()}
    counted = _sentences(split_by_sentence(rows, FilletsConfig(labeled=7, dev=3, test=0, unlabeled=40,
                                                              labeled_covers_alphabet=False))[0])
    assert {k: len(v) for k, v in counted.items()} == {"labeled": 7, "unlabeled": 40, "dev": 3, "test": 0}
    with pytest.raises(ConfigError, match="more than the 100 sentences"):
        split_by_sentence(rows, FilletsConfig(labeled=60, dev=50))
    with pytest.raises(ConfigError, match="whole number"):
        FilletsConfig(labeled=2.5)


def test_labeled_split_gets_every_character():
    rows = [Utterance(f"u{i}", f"/x/{i}.wav", 1.0, "a", reference=text)
            for i, text in enumerate(["aa", "ab", "ba", "bb", "aab", "abb", "café", "ideeën", "bab", "aba"])]
    splits, moved = split_by_sentence(rows, FilletsConfig(labeled=2, dev=2, test=2))
    labeled_chars = set("".join(u.reference for u in splits["labeled"]))
    assert labeled_chars >= set("abcfeéëdin") and len(splits["labeled"]) == 2 + len(moved)
    assert all(m["sentence"] in {"café", "ideeën"} for m in moved)


def test_resume_keeps_valid_wavs_and_redoes_broken_ones(tree, tmp_path):
    out = tmp_path / "nl"
    config = FilletsConfig(root=str(tree), seed=3)
    first = prepare_fillets(config, out, progress=False)
    manifests = {name: (out / name).read_bytes() for name in ("labeled.csv", "unlabeled.csv", "dev.csv", "test.csv", "lm_text.txt")}
    wav = Path(read_manifest(out / "dev.csv")[0].wav)
    wav.write_bytes(wav.read_bytes()[:100])  # a file cut short by a kill
    (wav.parent / f".{wav.name}.abc.tmp").write_bytes(b"half")  # an atomic write's leftover
    second = prepare_fillets(config, out, progress=False)
    assert first.converted == len(SPOKEN) - 2 and (second.converted, second.reused) == (1, first.converted - 1)
    assert not list(wav.parent.glob(".*.tmp")) and sf.info(str(wav)).frames > 0
    assert {name: (out / name).read_bytes() for name in manifests} == manifests  # the same corpus
    third = prepare_fillets(FilletsConfig(root=str(tree), seed=4), out, progress=False)
    assert third.converted == 0  # another split of the same clips converts nothing ...
    assert (out / "labeled.csv").read_bytes() != manifests["labeled.csv"]  # ... and rewrites the manifests


def test_missing_package_is_one_clear_error(tmp_path, tree):
    with pytest.raises(CorpusError, match=r"apt-get install fillets-ng-data-nl"):
        prepare_fillets(FilletsConfig(root=str(tmp_path / "nothing")), tmp_path / "out", progress=False)
    with pytest.raises(CorpusError, match="recordings for language 'de'.*fillets-ng-data-de"):
        prepare_fillets(FilletsConfig(root=str(tree), lang="de"), tmp_path / "out", progress=False)
    result = CliRunner().invoke(main, ["data", "prepare", "fillets", "--root", str(tmp_path / "nothing"),
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "apt-get install fillets-ng-data-nl" in result.output
    assert "Traceback" not in result.output


def test_cli_prepares_and_reports(tree, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(main, ["data", "prepare", "fillets", "--root", str(tree), "--out", str(out),
                                       "--seed", "2", "--labeled", "5", "--dev", "0.2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "labeled" in result.output and "dropped: digits 1" in result.output
    saved = json.loads((out / "corpus.json").read_text(encoding="utf-8"))
    assert saved["config"]["labeled"] == 5 and saved["config"]["dev"] == 0.2 and saved["config"]["seed"] == 2
    assert saved["splits"]["labeled"]["sentences"] == 5 + len(saved["moved_for_alphabet"])
    bad = CliRunner().invoke(main, ["data", "prepare", "fillets", "--root", str(tree), "--out", str(out), "--labeled", "2.5"])
    assert bad.exit_code == 2 and "whole number" in bad.output


def test_lm_extra_is_normalised_and_never_holds_another_splits_sentence(prepared, tree, tmp_path):
    out, _ = prepared
    sentences = _sentences(_splits(out))
    extra = tmp_path / "extra.txt"
    # Every sentence of every split, written as raw text would be (capital, punctuation), and two new ones.
    raw = [f"{s[0].upper()}{s[1:]}!" for name in SPLITS for s in sorted(sentences[name])]
    extra.write_text("\n".join([*raw, "Een NIEUWE zin, over de zee.", "", "Zo\u2019n kreeft?"]) + "\n", encoding="utf-8")
    corpus = prepare_fillets(FilletsConfig(root=str(tree), lm_extra=str(extra)), tmp_path / "extra", progress=False)
    lm_lines = (tmp_path / "extra" / "lm_text.txt").read_text(encoding="utf-8").splitlines()
    assert lm_lines == sorted(sentences["labeled"] | {"een nieuwe zin over de zee", "zo'n kreeft"})
    assert corpus.lm_sentences == len(lm_lines)
    assert not set(lm_lines) & (sentences["unlabeled"] | sentences["dev"] | sentences["test"])
