"""Evaluation metrics, each from the library the field uses to report it.

- perplexity: exp of the mean token negative log-likelihood,
- ROUGE-L: Google's ``rouge-score`` (F-measure, Porter stemming),
- BLEU: ``sacrebleu`` corpus BLEU (0-100, its default 13a tokenisation),
- exact match and token F1: the SQuAD definitions (normalised answers),
- accuracy, precision, recall, F1: macro-averaged over the reference labels, as scikit-learn's
  ``precision_recall_fscore_support(average="macro", zero_division=0)`` (a few lines here instead
  of ~50 MB of scikit-learn and SciPy wheels in the step archive).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from typing import Sequence


def perplexity(total_nll: float, token_count: int) -> float:
    if token_count <= 0:
        raise ValueError("perplexity needs at least one target token")
    return math.exp(total_nll / token_count)


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> float:
    from rouge_score import rouge_scorer

    _same_length(predictions, references)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references)]
    return sum(scores) / len(scores)


def bleu(predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]) -> float:
    """Corpus BLEU; ``references`` is one reference per prediction, or several reference streams."""
    import sacrebleu

    if references and isinstance(references[0], str):
        _same_length(predictions, references)
        streams = [list(references)]
    else:
        streams = [list(s) for s in references]
        for stream in streams:
            _same_length(predictions, stream)
    return float(sacrebleu.corpus_bleu(list(predictions), streams).score)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    _same_length(predictions, references)
    hits = sum(normalize_answer(p) == normalize_answer(r) for p, r in zip(predictions, references))
    return hits / len(predictions)


def _token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_f1(predictions: Sequence[str], references: Sequence[str]) -> float:
    _same_length(predictions, references)
    return sum(_token_f1(p, r) for p, r in zip(predictions, references)) / len(predictions)


def classification(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    _same_length(predictions, references)
    labels = sorted(set(references))  # predictions outside the label set count as errors only
    pairs = list(zip(predictions, references))
    precisions, recalls, f1s = [], [], []
    for label in labels:
        hits = sum(1 for p, r in pairs if p == r == label)
        predicted = sum(1 for p, _ in pairs if p == label)
        actual = sum(1 for _, r in pairs if r == label)
        precision = hits / predicted if predicted else 0.0
        recall = hits / actual if actual else 0.0
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return {
        "accuracy": sum(1 for p, r in pairs if p == r) / len(pairs),
        "precision": sum(precisions) / len(labels),
        "recall": sum(recalls) / len(labels),
        "f1": sum(f1s) / len(labels),
    }


def generation(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    return {
        "rouge_l": rouge_l(predictions, references),
        "bleu": bleu(predictions, references),
        "exact_match": exact_match(predictions, references),
        "token_f1": token_f1(predictions, references),
    }


def _same_length(predictions: Sequence, references: Sequence) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("no predictions to score")
