"""lm/doc_text.py: LM sentences from HTML, plain-text and gzip'ed documentation, each drop counted."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from selftrain.cli import main
from selftrain.data.fillets import DIALOG_NORMALIZER
from selftrain.errors import LMError
from selftrain.lm.doc_text import (
    DEBIAN_DOCS,
    DebianDocs,
    DocTextConfig,
    debian_docs,
    extract_doc_text,
    read_paragraphs,
    sentence_drop_reason,
    split_sentences,
)

HTML = """<!DOCTYPE html><html lang="nl"><head><title>Handleiding</title>
<style>p { color: red; }</style><script>var x = "Dit is code.";</script></head><body>
<h2>Inleiding</h2>
<p>De vis zwemt in de zee. Het schip ligt op de bodem!</p>
<p>Installeer het met <code class="literal">apt-get install vis</code> als beheerder.</p>
<pre class="screen">Dit staat in een blok code.</pre>
<p lang="en">This paragraph was never translated.</p>
<p>Zie https://example.org voor meer. Er zijn 12 vissen. Het GNU-project helpt.</p>
<p>Neem bijv. de kreeft mee. Caf&eacute;s aan het IJsselmeer zijn open&shy;baar.</p>
<p>Schip.<br>De grote vis zegt nee.</p>
</body></html>
"""
TEXT = """De vis zwemt in de zee.  Zo’n schip
is oud.

Dit is een te korte zin? Ja.
"""
CHARS = "'abcdefghijklmnopqrstuvwxyzéëï"


def _docs(root: Path) -> Path:
    docs = root / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "manual.html").write_text(HTML, encoding="utf-8")
    (docs / "sub" / "faq.txt.gz").write_bytes(gzip.compress(TEXT.encode("utf-8")))
    (docs / "sub" / "plaatje.png").write_bytes(b"\x89PNG\r\n")
    (docs / "sub" / "kapot.txt").write_bytes("Een café.".encode("latin-1"))
    return docs


def test_html_paragraphs_skip_code_other_languages_and_head(tmp_path):
    page = tmp_path / "p.html"
    page.write_text(HTML, encoding="utf-8")
    paragraphs = read_paragraphs(page, lang="nl")
    assert "Handleiding" in paragraphs and "Inleiding" in paragraphs  # title and headings stay their own paragraph
    assert not any("color" in p or "Dit is code" in p or "blok code" in p for p in paragraphs)
    assert not any("translated" in p for p in paragraphs)
    assert any(p.startswith("Installeer het met \x00") for p in paragraphs)  # inline code leaves a mark
    assert "Neem bijv. de kreeft mee. Cafés aan het IJsselmeer zijn openbaar." in paragraphs
    assert "Schip." in paragraphs and "De grote vis zegt nee." in paragraphs  # <br> ends a paragraph
    assert any("translated" in p for p in read_paragraphs(page, lang=""))  # no language: everything kept


def test_split_and_drop_reasons():
    assert split_sentences("Ga nu. Neem bijv. de kreeft! \u201cJa?\u201d Nee") == [
        "Ga nu.", "Neem bijv. de kreeft!", "\u201cJa?\u201d", "Nee"]
    config = DocTextConfig()
    reasons = {
        "Zie www.debian.org nu.": "url", "Er zijn 12 vissen.": "digits", "Typ ls -l /etc daar.": "code",
        "Neem bijv. de kreeft.": "abbreviation", "Het GNU-project.": "acronym", "Inleiding": "no_end_punctuation",
        "Het IJsselmeer is groot.": None, "Zo\u2019n schip?": None,
    }
    assert {s: sentence_drop_reason(s, config) for s in reasons} == reasons
    assert sentence_drop_reason("Inleiding", DocTextConfig(require_end_punctuation=False)) is None
    assert sentence_drop_reason("Het GNU-project.", DocTextConfig(drop_acronyms=False)) is None


def test_extract_writes_normalised_unique_sentences_and_counts_drops(tmp_path):
    docs = _docs(tmp_path)
    out = tmp_path / "nl.txt"
    report = extract_doc_text([docs], out, DocTextConfig(lang="nl", chars=CHARS), DIALOG_NORMALIZER)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines == [  # manual.html first (paths sorted), the .txt.gz's repeat of the first kept once
        "de vis zwemt in de zee", "het schip ligt op de bodem", "cafés aan het ijsselmeer zijn openbaar",
        "de grote vis zegt nee", "zo'n schip is oud", "dit is een te korte zin"]
    assert report.sentences == 6 and report.words == sum(len(line.split()) for line in lines)
    assert report.vocabulary == len({w for line in lines for w in line.split()})
    assert report.files == 2 and report.skipped_files == {"not_html_or_text": 1, "unreadable": 1}
    assert report.dropped == {"abbreviation": 1, "acronym": 1, "code": 2, "digits": 1, "duplicate": 1,
                              "no_end_punctuation": 2, "too_short": 2, "url": 1}
    # code: the inline <code> and the <pre> block; no_end_punctuation: the title and the heading.
    assert report.sentences_seen == report.sentences + sum(report.dropped.values())
    again = tmp_path / "again.txt"
    extract_doc_text([docs], again, DocTextConfig(lang="nl", chars=CHARS), DIALOG_NORMALIZER)
    assert again.read_bytes() == out.read_bytes()


def test_alphabet_and_lexicon_filters(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("De vis eet een kreeft.\n\nDe kö is groot.\n\nThe fish eats the lobster.\n", encoding="utf-8")
    lexicon = tmp_path / "words"
    lexicon.write_text("de\nvis\neet\neen\nkreeft\nkö\nis\ngroot\nZee\nA.B.C.\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    report = extract_doc_text([text], out, DocTextConfig(chars=CHARS), DIALOG_NORMALIZER, lexicon=lexicon)
    assert out.read_text(encoding="utf-8").splitlines() == ["de vis eet een kreeft"]
    assert report.dropped == {"not_in_lexicon": 1, "outside_alphabet": 1} and report.lexicon_lines == 0
    # As one-word lines: the lexicon's words the sentences lack, inside the alphabet, sorted.
    report = extract_doc_text([text], out, DocTextConfig(chars=CHARS, lexicon_words=True), DIALOG_NORMALIZER,
                              lexicon=lexicon)
    assert out.read_text(encoding="utf-8").splitlines() == ["de vis eet een kreeft", "groot", "is", "zee"]
    assert report.lexicon_lines == 3 and report.sentences == 1


def test_nothing_usable_and_missing_paths_are_errors(tmp_path):
    empty = tmp_path / "leeg.txt"
    empty.write_text("Inleiding\n", encoding="utf-8")
    with pytest.raises(LMError, match="no usable sentence"):
        extract_doc_text([empty], tmp_path / "o.txt", DocTextConfig(), DIALOG_NORMALIZER)
    with pytest.raises(LMError, match="no such file"):
        extract_doc_text([tmp_path / "nergens"], tmp_path / "o.txt", DocTextConfig(), DIALOG_NORMALIZER)
    with pytest.raises(LMError, match="min_words"):
        DocTextConfig(min_words=5, max_words=3)


def test_missing_debian_packages_name_the_install_command(tmp_path, monkeypatch):
    present = tmp_path / "faq"
    present.mkdir()
    monkeypatch.setitem(DEBIAN_DOCS, "xx", DebianDocs(
        docs={str(present): "doc-faq-xx", str(tmp_path / "manual"): "doc-manual-xx"},
        lexicon=(str(tmp_path / "dict"), "wxx")))
    with pytest.raises(LMError) as error:
        debian_docs("xx")
    message = str(error.value)
    assert "`apt-get install doc-manual-xx wxx`" in message and "\n" not in message and "doc-faq-xx" not in message
    assert "doc-manual-xx`" in str(pytest.raises(LMError, debian_docs, "xx", lexicon=False).value)
    with pytest.raises(LMError, match="pass the files"):
        debian_docs("zz")


def test_cli_writes_text_and_report(tmp_path):
    docs = _docs(tmp_path)
    out = tmp_path / "nl.txt"
    result = CliRunner().invoke(main, ["lm", "text-from-docs", str(docs), "--lang", "nl", "--chars", CHARS,
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "6 sentences" in result.output and "duplicate 1" in result.output
    report = json.loads((tmp_path / "nl.report.json").read_text(encoding="utf-8"))
    assert report["sentences"] == len(out.read_text(encoding="utf-8").splitlines()) == 6
    assert report["config"]["chars"] == CHARS
    missing = CliRunner().invoke(main, ["lm", "text-from-docs", "--lang", "zz", "--out", str(out)])
    assert missing.exit_code == 2 and "pass the files" in missing.output
