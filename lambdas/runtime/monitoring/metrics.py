"""LLM and RAG metrics: pure functions over one interaction record.

``METRICS`` is the one place that says what each metric is and what it costs: ``cheap`` ones need
no model and fit the query Lambda's per-request budget (``cheap_metrics``), ``classifier`` needs
scikit-learn (alt-profanity-check), ``embedding`` needs the MiniLM model, ``batch`` compares
records with each other. docs/monitoring.md renders the same table for people.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from lambdas.runtime.monitoring.records import Interaction
from lambdas.runtime.rag.tokens import count_tokens

# Bump when a metric's definition changes: baselines built with another version are refused.
METRIC_SET_VERSION = 1
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


@dataclass(frozen=True)
class Metric:
    name: str
    cost: str  # cheap | classifier | embedding | batch
    range: str
    meaning: str


METRICS: tuple[Metric, ...] = (
    Metric("prompt_chars", "cheap", "0..", "characters in the prompt"),
    Metric("response_chars", "cheap", "0..", "characters in the response"),
    Metric("prompt_tokens", "cheap", "0..", "prompt tokens: metadata.prompt_tokens (the model's tokenizer) else MiniLM tokenizer"),
    Metric("response_tokens", "cheap", "0..", "response tokens: metadata.response_tokens else MiniLM tokenizer"),
    Metric("readability", "cheap", "about 0..100 (can leave it)", "Flesch reading ease of the response (textstat's counting, Pyphen syllables)"),
    Metric("repetition", "cheap", "0..1", "share of word trigrams in the response that repeat an earlier one"),
    Metric("distinct_2", "cheap", "0..1", "distinct word bigrams / all bigrams in the response"),
    Metric("sentiment", "cheap", "-1..1", "VADER compound score of the response"),
    Metric("refusal", "cheap", "0..1", "response looks like a refusal: pattern match (1) or bigram overlap with reference/refusal.txt"),
    Metric("jailbreak", "cheap", "0..1", "prompt tries a persona/rule override: pattern (1) or overlap with reference/jailbreak.txt"),
    Metric("injection", "cheap", "0..1", "prompt or a context tries to override/extract instructions: pattern (1) or overlap with reference/injection.txt"),
    Metric("toxicity", "classifier", "0..1", "alt-profanity-check probability for the response"),
    Metric("prompt_toxicity", "classifier", "0..1", "alt-profanity-check probability for the prompt"),
    Metric("relevance", "embedding", "-1..1", "cosine of MiniLM embeddings of question (else prompt) and response"),
    Metric("hallucination", "embedding", "0..1", "share of response sentences supported by no context (cosine < 0.55 and token recall < 0.6); only with contexts"),
    Metric("context_count", "cheap", "0..", "retrieved contexts (chunks) in the record; only with contexts"),
    Metric("context_chars_mean", "cheap", "0..", "mean characters per context; only with contexts"),
    Metric("top_score", "cheap", "retriever's", "metadata.scores[0], the best retrieval score; only when given"),
    Metric("score_gap", "cheap", "retriever's", "metadata.scores[0] - metadata.scores[-1] (first vs k-th hit); only when given"),
    Metric("embedding_latency_ms", "cheap", "0..", "metadata.embedding_ms; only when given"),
    Metric("retrieval_latency_ms", "cheap", "0..", "metadata.retrieval_ms; only when given"),
    Metric("repeatability", "batch", "-1..1", "mean cosine of this response with the other responses to the same prompt; only when the prompt repeats"),
)
METRIC_NAMES = tuple(m.name for m in METRICS)
CHEAP = tuple(m.name for m in METRICS if m.cost == "cheap")
# Metrics that every record has when the model is used (the rest exist only with contexts/metadata).
ALWAYS = ("prompt_chars", "response_chars", "prompt_tokens", "response_tokens", "readability", "repetition",
          "distinct_2", "sentiment", "refusal", "jailbreak", "injection")

_WORD = re.compile(r"[\w']+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")

# Patterns that on their own mark a prompt or response; the reference files catch paraphrases.
_REFUSAL_PATTERNS = re.compile(
    r"\b(?:i(?:'m| am)\s+(?:really\s+)?(?:sorry|unable|not able)|i\s+(?:can(?:no|')t|cannot|won't|will not|must decline|must refuse)"
    r"\s+(?:help|assist|provide|comply|do|answer|share|create|support)|as an ai(?: language model)?,? i\b|"
    r"i apologi[sz]e,? but)",
    re.I,
)
_JAILBREAK_PATTERNS = re.compile(
    r"\b(?:do anything now|\bDAN\b|developer mode|jailbr(?:ea|o)k|no (?:restrictions|rules|limits|filters|guidelines|content polic(?:y|ies))|"
    r"without (?:any )?(?:restrictions|rules|filters|censorship|content polic(?:y|ies))|(?:pretend|imagine) (?:you are|to be|you're)|"
    r"act as (?:an?|my) (?:unfiltered|evil|uncensored|amoral|deceased|dead)|stay in character|never refuse|"
    r"(?:unfiltered|uncensored|amoral) (?:ai|model|assistant|chatbot)|alter ego|safety (?:training|filters?) (?:is |are |has been )?(?:off|disabled|removed))",
    re.I,
)
_INJECTION_PATTERNS = re.compile(
    r"(?:\b(?:ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}\b(?:previous|prior|above|earlier|all|system|developer|original)\b"
    r"[^.\n]{0,20}\b(?:instructions?|prompts?|rules|messages?|context|directions)|"
    r"\b(?:print|reveal|show|repeat|output|leak|display|tell me)\b[^.\n]{0,30}\b(?:system prompt|initial instructions|hidden instructions|"
    r"your instructions|your prompt|text above|words above)|"
    r"\bnew instructions\s*:|\bsystem\s*:\s|<\|im_start\|>|\[/?INST\]|"
    r"(?:[A-Za-z0-9+/]{40,}={0,2}))",  # a long base64 run: an encoded payload
    re.I,
)


@lru_cache(maxsize=None)
def reference_set(name: str) -> tuple[frozenset[tuple[str, str]], ...]:
    """Word-bigram sets of ``reference/<name>.txt`` (comments and blank lines skipped)."""
    path = REFERENCE_DIR / f"{name}.txt"
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return tuple(frozenset(_bigrams(_words(line))) for line in lines if line and not line.startswith("#"))


def reference_phrases(name: str) -> list[str]:
    path = REFERENCE_DIR / f"{name}.txt"
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _bigrams(words: Sequence[str]) -> list[tuple[str, str]]:
    return list(zip(words, words[1:]))


def _ngrams(words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def lexical_similarity(text: str, references: Iterable[frozenset[tuple[str, str]]]) -> float:
    """Best share of a reference phrasing's word bigrams found in ``text`` (containment, 0..1)."""
    grams = set(_bigrams(_words(text)))
    if not grams:
        return 0.0
    best = 0.0
    for ref in references:
        if ref:
            best = max(best, len(ref & grams) / len(ref))
    return best


def _pattern_or_similarity(text: str, pattern: re.Pattern[str], name: str) -> float:
    if pattern.search(text):
        return 1.0
    return round(lexical_similarity(text, reference_set(name)), 6)


def refusal(response: str) -> float:
    return _pattern_or_similarity(response, _REFUSAL_PATTERNS, "refusal")


def jailbreak(prompt: str) -> float:
    return _pattern_or_similarity(prompt, _JAILBREAK_PATTERNS, "jailbreak")


def injection(prompt: str, contexts: Sequence[str] | None = None) -> float:
    return max(_pattern_or_similarity(text, _INJECTION_PATTERNS, "injection") for text in (prompt, *(contexts or ())))


def repetition(text: str, n: int = 3) -> float:
    """Share of word n-grams that repeat an earlier n-gram of the same text (0 = no repeats)."""
    grams = _ngrams(_words(text), n)
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def distinct_n(text: str, n: int = 2) -> float:
    """Distinct word n-grams / all n-grams (1 = every n-gram different); 1 for texts shorter than n words."""
    grams = _ngrams(_words(text), n)
    if not grams:
        return 1.0
    return len(set(grams)) / len(grams)


def token_count(text: str) -> int:
    """Tokens of the shipped all-MiniLM-L6-v2 (WordPiece) tokenizer, without [CLS]/[SEP]."""
    return count_tokens(text)


@lru_cache(maxsize=1)
def _pyphen() -> Any:
    import pyphen

    return pyphen.Pyphen(lang="en_US")


_NON_CONTRACTION_APOSTROPHE = re.compile(r"'(?![tsd]|ve|ll|re)")
_PUNCTUATION = re.compile(r"[^\w\s']")
_SENTENCE_SPAN = re.compile(r"\b[^.!?]+[.!?]*", re.UNICODE)


def _flesch_words(text: str) -> list[str]:
    return _PUNCTUATION.sub("", _NON_CONTRACTION_APOSTROPHE.sub("", text)).split()


def readability(text: str) -> float:
    """Flesch reading ease, counted as textstat 0.7 counts it, with Pyphen syllables; 0 without words.

    Not textstat itself: importing it imports NLTK (over a second of Lambda cold start) and its
    English syllables come from NLTK's cmudict, downloaded on first use, which offline code cannot do.
    tests/lambdas/monitoring/test_metrics.py checks the figures equal textstat's Pyphen path.
    """
    words = _flesch_words(text)
    if not words:
        return 0.0
    spans = _SENTENCE_SPAN.findall(text)
    sentences = max(1, len(spans) - sum(1 for span in spans if len(_flesch_words(span)) <= 2))
    hyphenator = _pyphen()
    # textstat strips punctuation first and lower-cases after (lower() can change a text's length).
    syllables = sum(len(hyphenator.positions(word.lower())) + 1 for word in words)
    return 206.835 - 1.015 * (len(words) / sentences) - 84.6 * (syllables / len(words))


@lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> float:
    return float(_vader().polarity_scores(text)["compound"])


@lru_cache(maxsize=1)
def _profanity() -> Any:
    import warnings

    with warnings.catch_warnings():
        # its pickled vectorizer may come from another scikit-learn patch release; the vocabulary is what matters
        warnings.simplefilter("ignore")
        from profanity_check import predict_prob
    return predict_prob


def toxicity(texts: Sequence[str]) -> list[float]:
    """alt-profanity-check probabilities, one per text (batched: the vectorizer is the cost)."""
    if not texts:
        return []
    return [float(p) for p in _profanity()(list(texts))]


def _number(metadata: Mapping[str, Any], key: str) -> float | None:
    value = metadata.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def cheap_metrics(prompt: str, response: str, *, contexts: Sequence[str] | None = None,
                  metadata: Mapping[str, Any] | None = None) -> dict[str, float]:
    """The model-free metrics (``CHEAP``) of one interaction: what the query Lambda emits per request."""
    metadata = metadata or {}
    prompt_tokens = _number(metadata, "prompt_tokens")
    response_tokens = _number(metadata, "response_tokens")
    out = {
        "prompt_chars": float(len(prompt)),
        "response_chars": float(len(response)),
        "prompt_tokens": prompt_tokens if prompt_tokens is not None else float(token_count(prompt)),
        "response_tokens": response_tokens if response_tokens is not None else float(token_count(response)),
        "readability": readability(response),
        "repetition": repetition(response),
        "distinct_2": distinct_n(response, 2),
        "sentiment": sentiment(response),
        "refusal": refusal(response),
        "jailbreak": jailbreak(prompt),
        "injection": injection(prompt, contexts),
    }
    if contexts is not None:
        out["context_count"] = float(len(contexts))
        out["context_chars_mean"] = sum(map(len, contexts)) / len(contexts) if contexts else 0.0
    scores = metadata.get("scores")
    if isinstance(scores, list) and scores and all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scores):
        out["top_score"] = float(scores[0])
        out["score_gap"] = float(scores[0] - scores[-1])
    for key, name in (("embedding_ms", "embedding_latency_ms"), ("retrieval_ms", "retrieval_latency_ms")):
        value = _number(metadata, key)
        if value is not None:
            out[name] = value
    return out


def cheap_record_metrics(record: Interaction) -> dict[str, float]:
    return cheap_metrics(record.prompt, record.response, contexts=record.contexts, metadata=record.metadata)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text.strip()) if _words(s)]


_STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that these those "
    "i you he she we they them his her our their my your not no do does did so than then there here what which who whom "
    "how when where why can could would should will shall may might must have has had".split()
)


def token_recall(sentence: str, context: str) -> float:
    """Share of the sentence's content words that occur in the context (1 when it has none)."""
    words = {w for w in _words(sentence) if w not in _STOPWORDS}
    if not words:
        return 1.0
    return len(words & set(_words(context))) / len(words)


SUPPORT_COSINE = 0.55
SUPPORT_RECALL = 0.6


def hallucination_share(answer_sentences: Sequence[str], contexts: Sequence[str],
                        cosines: Sequence[Sequence[float]]) -> float:
    """Share of sentences supported by no context; ``cosines[i][j]`` = sentence i vs context j."""
    if not answer_sentences:
        return 0.0
    if not contexts:
        return 1.0
    unsupported = 0
    for i, sentence in enumerate(answer_sentences):
        supported = any(cosines[i][j] >= SUPPORT_COSINE or token_recall(sentence, ctx) >= SUPPORT_RECALL
                        for j, ctx in enumerate(contexts))
        unsupported += not supported
    return unsupported / len(answer_sentences)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0
