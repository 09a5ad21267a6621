"""Each evaluation metric against reference values published with (or derivable from) its library."""

from __future__ import annotations

import math

import pytest

from pipelines.steps import metrics as m
from pipelines.steps.check import THRESHOLDS, check


def test_rouge_l_matches_the_rouge_score_readme_example():
    # google-research/rouge README: score('The quick brown fox jumps over the lazy dog',
    # 'The quick brown dog jumps on the log.') -> rougeL fmeasure 0.5882...
    value = m.rouge_l(["The quick brown dog jumps on the log."], ["The quick brown fox jumps over the lazy dog"])
    assert value == pytest.approx(0.5882352941, abs=1e-9)
    assert m.rouge_l(["same words here"], ["same words here"]) == 1.0


def test_bleu_matches_the_sacrebleu_readme_example():
    # sacrebleu README: two reference streams, corpus BLEU = 48.53
    hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    refs = [
        ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
        ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
    ]
    assert m.bleu(hyps, refs) == pytest.approx(48.53, abs=0.01)
    assert m.bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)


def test_exact_match_and_token_f1_use_the_squad_definitions():
    assert m.exact_match(["The Cat!", "a dog"], ["cat", "dog house"]) == 0.5
    # "the cat sat" vs "a cat sat down": tokens {cat, sat} vs {cat, sat, down}: P=1, R=2/3, F1=0.8
    assert m.token_f1(["the cat sat"], ["a cat sat down"]) == pytest.approx(0.8)
    assert m.token_f1(["completely different"], ["nothing shared"]) == 0.0
    assert m.token_f1(["", "x"], ["", "x"]) == 1.0


def test_classification_metrics_match_hand_computed_macro_values():
    result = m.classification(["a", "b", "b", "b"], ["a", "a", "b", "b"])
    assert result["accuracy"] == 0.75
    assert result["precision"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert result["recall"] == pytest.approx((0.5 + 1.0) / 2)
    assert result["f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    # A prediction outside the label set is an error, not a new class diluting the macro average.
    assert m.classification(["zzz"], ["a"])["accuracy"] == 0.0


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    vocab = 37
    tokens = 11
    assert m.perplexity(tokens * math.log(vocab), tokens) == pytest.approx(vocab)
    with pytest.raises(ValueError):
        m.perplexity(1.0, 0)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        m.exact_match(["a", "b"], ["a"])


def test_check_passes_fails_and_reports_not_applicable_thresholds():
    metrics = {"rouge_l": 0.31, "bleu": 12.0, "perplexity": 8.5}
    ok = check(metrics, {"min_rouge_l": 0.3, "max_perplexity": 10, "min_accuracy": 0.9, "min_bleu": 0})
    assert ok.passed and ok.checked == ["max_perplexity", "min_rouge_l"] and ok.not_applicable == ["min_accuracy"]
    bad = check(metrics, {"min_rouge_l": 0.5, "max_perplexity": 5})
    assert not bad.passed
    assert bad.reason == "perplexity 8.5 is not <= 5; rouge_l 0.31 is not >= 0.5"
    assert not check({"perplexity": float("nan")}, {"max_perplexity": 5}).passed
    with pytest.raises(ValueError, match="unknown threshold"):
        check(metrics, {"min_magic": 1})
    assert set(THRESHOLDS) == {"min_rouge_l", "min_bleu", "min_exact_match", "min_token_f1", "min_accuracy", "min_f1", "max_perplexity"}
