"""``selftrain lm``: build word n-gram LMs with KenLM for beam-search decoding."""

from __future__ import annotations

from pathlib import Path

import click

from selftrain.cli.common import field_option, user_errors
from selftrain.lm.build import LMBuildConfig
from selftrain.lm.doc_text import DocTextConfig

__all__ = ["lm"]

# The options that set a config field take its default and its description (selftrain.config_docs).
BUILD_DEFAULTS = LMBuildConfig()


@click.group()
def lm() -> None:
    """Word n-gram language models (KenLM)."""


def _parse_prune(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.replace(",", " ").split())
    except ValueError as exc:
        raise click.BadParameter(f"expected integers such as '0 0 1', got {value!r}", param_hint="--prune") from exc


def _lm_file(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``--out`` names an ARPA or KenLM binary model: a usage error before lmplz runs."""
    if Path(value).suffix not in (".arpa", ".bin"):
        raise click.BadParameter(f"must end in .arpa or .bin, got {value}", ctx, param)
    return value


@lm.command("build")
@click.option("--text", "texts", required=True, multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="LM training text, one sentence per line (repeat for several files).")
@field_option(LMBuildConfig, "order", type=click.IntRange(1, 9))
@click.option("--out", required=True, type=click.Path(dir_okay=False), callback=_lm_file,
              help="Output model: LM.arpa (text) or LM.bin (KenLM binary, loads fast).")
@field_option(LMBuildConfig, "prune", default=" ".join(str(p) for p in BUILD_DEFAULTS.prune),
              extra="Here: integers separated by spaces or commas, e.g. '0 0 1'; empty: none.")
@click.option("--discount-fallback", "discount_fallback", flag_value="always",
              help="Always pass lmplz --discount_fallback (default: only when tiny text makes it fail).")
@click.option("--no-discount-fallback", "discount_fallback", flag_value="never",
              help="Fail instead of falling back when Kneser-Ney discounts cannot be estimated.")
@click.option("--tokenizer", type=click.Path(exists=True, dir_okay=False),
              help="A model's tokenizer.json: use its normaliser (and, for characters, its alphabet).")
@click.option("--alphabet", type=click.Path(exists=True, dir_okay=False),
              help="Alphabet JSON ({'chars': [...]}); lines with other characters are dropped and counted.")
@click.option("--heldout", type=click.Path(exists=True, dir_okay=False),
              help="Held-out text: report the model's perplexity on it.")
@field_option(LMBuildConfig, "memory")
def build(texts: tuple[str, ...], order: int, out: str, prune: str, discount_fallback: str | None,
          tokenizer: str | None, alphabet: str | None, heldout: str | None, memory: str) -> None:
    """Build a modified Kneser-Ney n-gram LM with KenLM's lmplz (and build_binary for .bin).

    Writes OUT, OUT's unigram list (LM.unigrams.txt, needed by the decoders) and a report
    (LM.report.json) with line counts and held-out perplexity.
    """
    from selftrain.data.tokenizer import CharTokenizer, load_tokenizer
    from selftrain.io import atomic_write_json
    from selftrain.lm import build_lm
    from selftrain.text import Alphabet

    with user_errors():
        config = LMBuildConfig(order=order, prune=_parse_prune(prune), memory=memory,
                               discount_fallback=discount_fallback or BUILD_DEFAULTS.discount_fallback)
        normalizer, chars = None, None
        if tokenizer:
            tok = load_tokenizer(tokenizer)
            normalizer = tok.normalizer
            chars = tok.alphabet if isinstance(tok, CharTokenizer) else None
        if alphabet:
            chars = Alphabet.load(alphabet)
        report = build_lm(list(texts), out, config, normalizer=normalizer, alphabet=chars, heldout=heldout)
    out_path = Path(out)
    atomic_write_json(out_path.with_name(f"{out_path.stem}.report.json"), report.to_dict())
    stats = report.text
    click.echo(f"wrote {report.path} ({report.order}-gram, {report.vocab_size} words) and {report.unigrams_path}")
    click.echo(f"text: {stats.lines_used}/{stats.lines_read} lines used, {stats.dropped_empty} empty, "
               f"{stats.dropped_unknown_chars} dropped for characters outside the alphabet "
               f"{''.join(stats.unknown_chars)!r}")
    if report.discount_fallback_used:
        click.echo("note: lmplz used --discount_fallback (text too small for Kneser-Ney discount estimates)")
    if report.heldout is not None:
        click.echo(f"held-out perplexity: {report.heldout.perplexity:.2f} "
                   f"(OOV rate {report.heldout.oov_rate:.3f}, {report.heldout.sentences} sentences)")


@lm.command("text-from-docs")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output text, one normalised sentence per line (a report goes to OUT's stem + .report.json).")
@field_option(DocTextConfig, "lang", extra="Without PATHS: read Debian's documentation of this language "
                                            "(nl: debian-faq-nl, aptitude-doc-nl, debian-edu-doc-nl, debian-edu-doc-legacy-nl).")
@field_option(DocTextConfig, "chars", extra="Typically the corpus alphabet.")
@click.option("--lexicon", type=click.Path(exists=True, dir_okay=False),
              help="Word list (one word a line); sentences it mostly lacks are dropped. "
                   "Default with --lang and no PATHS: Debian's list for the language (nl: wdutch).")
@click.option("--no-lexicon", is_flag=True, help="No word list, not even the default one.")
@field_option(DocTextConfig, "lexicon_min_known", type=click.FloatRange(0, 1))
@field_option(DocTextConfig, "lexicon_words", is_flag=True)
@field_option(DocTextConfig, "min_words", type=click.IntRange(1))
@field_option(DocTextConfig, "max_words", type=click.IntRange(1))
def text_from_docs(paths: tuple[str, ...], out: str, lang: str, chars: str, lexicon: str | None, no_lexicon: bool,
                   lexicon_min_known: float, lexicon_words: bool, min_words: int, max_words: int) -> None:
    """LM text from documentation: the sentences of HTML and .txt files (or .gz) in PATHS.

    Code, URLs, numbers, acronyms, abbreviations and headings are left out, each drop counted;
    sentences are normalised as the Fish Fillets transcripts are and kept once. Feed OUT to
    `data prepare fillets --lm-extra` or `lm build --text` (recipes/fillets_nl/README.md).
    """
    from selftrain.data.fillets import DIALOG_NORMALIZER
    from selftrain.io import atomic_write_json
    from selftrain.lm.doc_text import DEBIAN_DOCS, DocTextConfig, debian_docs, extract_doc_text

    with user_errors():
        config = DocTextConfig(lang=lang, chars=chars, min_words=min_words, max_words=max_words,
                               lexicon_min_known=lexicon_min_known, lexicon_words=lexicon_words)
        sources, word_list = list(paths), lexicon or ""
        if not sources:
            if not lang:
                raise click.UsageError("give PATHS, or --lang to read Debian's documentation of a language")
            if lang not in DEBIAN_DOCS:
                raise click.BadParameter(f"no Debian documentation is listed for {lang!r} (known: "
                                         f"{', '.join(sorted(DEBIAN_DOCS))}): pass the files or folders to read",
                                         param_hint="--lang")
            sources, default_list = debian_docs(lang, lexicon=not (lexicon or no_lexicon))
            word_list = word_list or default_list
        report = extract_doc_text(sources, out, config, DIALOG_NORMALIZER, "" if no_lexicon else word_list)
    out_path = Path(out)
    atomic_write_json(out_path.with_name(f"{out_path.stem}.report.json"), report.to_dict())
    click.echo(f"wrote {out}: {report.sentences} sentences, {report.words} words, {report.vocabulary} distinct words "
               f"(+{report.lexicon_lines} word-list lines) from {report.files} files")
    click.echo(f"{report.sentences_seen} sentences seen; dropped: "
               + (", ".join(f"{reason} {n}" for reason, n in report.dropped.items()) or "none"))
