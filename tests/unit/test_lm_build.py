"""lm/: building KenLM models with lmplz/build_binary, unigram lists, checks and clear errors."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from selftrain.errors import LMError
from selftrain.lm import LMBuildConfig, build_lm, find_kenlm_tool, load_kenlm, read_unigrams, unigrams_path
from selftrain.text import Alphabet
from tests.decode_helpers import LM_SENTENCES, write_lm_text

pytestmark = pytest.mark.skipif(
    not (Path(sys.prefix) / "bin" / "lmplz").exists(), reason="KenLM's lmplz is not built (scripts/setup.sh)"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("lm")
    text = write_lm_text(root / "text.txt", [*LM_SENTENCES, "", "The CAT -- sat!"])
    heldout = write_lm_text(root / "dev.txt", ["the cat sat on the log", "a dog and a zebra"])
    arpa = build_lm(text, root / "m.arpa", LMBuildConfig(order=3), heldout=heldout)
    binary = build_lm(text, root / "m.bin", LMBuildConfig(order=3), heldout=heldout)
    return {"root": root, "text": text, "arpa": arpa, "bin": binary}


def test_arpa_and_binary_are_built_with_unigrams_and_report(built) -> None:
    report = built["arpa"]
    assert Path(report.path).read_text().startswith("\n\\data\\") or "\\data\\" in Path(report.path).read_text()[:50]
    assert report.text.lines_read == len(LM_SENTENCES) + 2
    assert report.text.dropped_empty == 1
    assert report.text.lines_used == len(LM_SENTENCES) + 1
    words = read_unigrams(report.path)
    assert "cat" in words and "cat's" in words and "<s>" not in words and "<unk>" not in words
    assert words == sorted(words)
    assert unigrams_path(built["bin"].path).read_text().splitlines() == words
    assert report.vocab_size == len(words)
    ppl = report.heldout
    assert ppl.sentences == 2 and ppl.oov == 1  # "zebra"
    assert 1.0 < ppl.perplexity < 1000.0 and math.isfinite(ppl.perplexity)


def test_binary_scores_like_arpa(built) -> None:
    arpa, binary = load_kenlm(built["arpa"].path), load_kenlm(built["bin"].path)
    sentences = ["the cat sat on the mat", "a dog likes the zebra", "mat the on sat cat the", "cat's food"]
    for sentence in sentences:
        assert binary.score(sentence) == pytest.approx(arpa.score(sentence), abs=1e-5)
    assert arpa.score("the cat sat on the mat") > arpa.score("mat the on sat cat the")
    assert built["bin"].heldout.perplexity == pytest.approx(built["arpa"].heldout.perplexity, rel=1e-5)


def test_normalisation_and_alphabet_filter(tmp_path: Path) -> None:
    text = write_lm_text(tmp_path / "t.txt", ["The Cat SAT.", "the dög sat", "a cat, a mat!", "x y z"])
    alphabet = Alphabet(list(" 'abcdefghijklmnopqrstuvwxyz"))
    report = build_lm(text, tmp_path / "a.arpa", LMBuildConfig(order=2), alphabet=alphabet)
    assert report.text.dropped_unknown_chars == 1 and report.text.unknown_chars == ["ö"]
    assert report.text.lines_used == 3
    assert set(read_unigrams(report.path)) == {"the", "cat", "sat", "a", "mat", "x", "y", "z"}
    with pytest.raises(LMError, match="outside the alphabet"):
        build_lm(text, tmp_path / "b.arpa", LMBuildConfig(order=2, drop_unknown_chars=False), alphabet=alphabet)


def test_discount_fallback_is_automatic_on_artificial_text(tmp_path: Path) -> None:
    text = write_lm_text(tmp_path / "t.txt", ["a b c", "a b c", "c b a"])
    with pytest.raises(LMError, match="discount_fallback"):
        build_lm(text, tmp_path / "a.arpa", LMBuildConfig(order=3, discount_fallback="never"))
    assert not (tmp_path / "a.arpa").exists()
    report = build_lm(text, tmp_path / "a.arpa", LMBuildConfig(order=3))
    assert report.discount_fallback_used
    assert load_kenlm(report.path).score("a b c") > load_kenlm(report.path).score("b a c")


def test_prune_and_config_errors(tmp_path: Path) -> None:
    text = write_lm_text(tmp_path / "t.txt", LM_SENTENCES * 3)
    report = build_lm(text, tmp_path / "p.arpa", LMBuildConfig(order=3, prune=(0, 0, 1)))
    assert load_kenlm(report.path).order == 3
    with pytest.raises(LMError, match="non-decreasing"):
        LMBuildConfig(prune=(1, 0))
    with pytest.raises(LMError, match=r"\.arpa or \.bin"):
        build_lm(text, tmp_path / "x.lm")
    with pytest.raises(LMError, match="no usable text"):
        build_lm(write_lm_text(tmp_path / "e.txt", ["", "!!"]), tmp_path / "e.arpa")


def test_a_model_is_read_once_until_its_file_changes(tmp_path: Path) -> None:
    text = write_lm_text(tmp_path / "t.txt", LM_SENTENCES * 3)
    path = build_lm(text, tmp_path / "m.arpa", LMBuildConfig(order=3)).path
    first = load_kenlm(path)
    assert load_kenlm(path) is first and load_kenlm(Path(path).resolve()) is first
    rebuilt = build_lm(write_lm_text(tmp_path / "u.txt", LM_SENTENCES[:4] * 3), path, LMBuildConfig(order=2)).path
    again = load_kenlm(rebuilt)
    assert again is not first and again.order == 2  # the rewritten file, not the kept model


def test_missing_and_corrupt_models_raise_lm_error(tmp_path: Path) -> None:
    with pytest.raises(LMError, match="not found"):
        load_kenlm(tmp_path / "nope.bin")
    (tmp_path / "empty.arpa").write_bytes(b"")
    with pytest.raises(LMError, match="empty"):
        load_kenlm(tmp_path / "empty.arpa")
    (tmp_path / "junk.bin").write_bytes(b"\x00\x01garbage" * 50)
    with pytest.raises(LMError, match="not a valid ARPA or KenLM binary"):
        load_kenlm(tmp_path / "junk.bin")
    (tmp_path / "torn.arpa").write_text("\\data\\\nngram 1=5\n\n\\1-grams:\n-1.0\t<s>\n")
    with pytest.raises(LMError, match="cannot load language model"):
        load_kenlm(tmp_path / "torn.arpa")
    with pytest.raises(LMError, match="unigram list"):
        read_unigrams(tmp_path / "junk.bin")


def test_missing_tools_say_how_to_get_them(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LMError, match="scripts/setup.sh"):
        find_kenlm_tool("lmplz")


def test_cli_lm_build(tmp_path: Path) -> None:
    from selftrain.cli import main

    text = write_lm_text(tmp_path / "t.txt")
    out = tmp_path / "cli.bin"
    result = CliRunner().invoke(main, ["lm", "build", "--text", str(text), "--order", "2", "--out", str(out),
                                       "--heldout", str(text)])
    assert result.exit_code == 0, result.output
    assert "held-out perplexity" in result.output
    assert out.exists() and unigrams_path(out).exists() and (tmp_path / "cli.report.json").exists()
    bad = CliRunner().invoke(main, ["lm", "build", "--text", str(text), "--out", str(tmp_path / "x.txt")])
    assert bad.exit_code == 2 and ".arpa or .bin" in bad.output
