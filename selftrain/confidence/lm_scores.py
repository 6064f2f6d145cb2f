"""Word scores from the n-gram LM: how much the LM wanted each word of a hypothesis.

Frame scores see acoustic doubt but not a word the LM put in place of a confidently recognised
one; the LM's own view of the word can. Per word: ``lm_word_prob`` = P_LM(word | the words before
it) and ``lm_context`` = the length of the n-gram KenLM matched, over the model's order (1: the
full context was seen in the LM text, low: backed off to a short context or the unigram). The
utterance gets their means. Both are inputs of the learned combination (on the default corpus's
generation-1 labels, adding them raised the combined word AUROC; see the pseudo-label quality
results); on their own they are weak, so nothing selects by them by default.
"""

from __future__ import annotations

from selftrain.record import Hypothesis

__all__ = ["LM_SCORES", "add_lm_scores"]

LM_SCORES = ("lm_word_prob", "lm_context")


def add_lm_scores(hyp: Hypothesis, kenlm_model) -> None:
    """Add :data:`LM_SCORES` to every word of ``hyp`` (and their means to ``hyp.scores``), in place.

    ``kenlm_model`` is a loaded ``kenlm.Model``; the hypothesis starts a sentence (``<s>`` context).
    A hypothesis without word records is left alone.
    """
    if not hyp.words:
        return
    text = " ".join(w.word for w in hyp.words)
    order = max(1, int(kenlm_model.order))
    values = []
    for word, (log10_prob, ngram_length, _oov) in zip(hyp.words, kenlm_model.full_scores(text, bos=True, eos=False),
                                                       strict=False):
        scores = {"lm_word_prob": float(10.0 ** log10_prob), "lm_context": min(1.0, ngram_length / order)}
        word.scores.update(scores)
        values.append(scores)
    for name in LM_SCORES:
        hyp.scores[name] = sum(v[name] for v in values) / len(values)
