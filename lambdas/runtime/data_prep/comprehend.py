"""Amazon Comprehend calls within its per-request byte limits.

Every call splits its text with ``split_by_bytes`` and shifts the piece-relative offsets back
with ``merge_piece_spans``, so offsets always refer to the whole text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lambdas.runtime.data_prep.errors import raise_if_throttled
from lambdas.runtime.data_prep.spans import Span, TextPiece, merge_piece_spans, split_by_bytes

# Per-request UTF-8 size limits (Comprehend API reference: 100 KB for the detect APIs).
DETECT_BYTE_LIMIT = 100_000
# Real-time custom classification takes far less per request; only the opening is classified.
CLASSIFY_BYTE_LIMIT = 10_000
PII_LANGUAGES = ("en", "es")
ENTITY_LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "ar", "hi", "ja", "ko", "zh", "zh-TW")


def _pieces(text: str, limit: int) -> list[TextPiece]:
    # Whitespace-only pieces carry nothing to detect: skip the request.
    return [p for p in split_by_bytes(text, limit) if p.text.strip()]


class ComprehendAnalyzer:
    """PII, entities, key phrases, dominant language and an optional custom classifier."""

    def __init__(
        self,
        client: Any,
        *,
        pii_entity_types: Sequence[str] = ("ALL",),
        min_score: float = 0.5,
        classifier_endpoint_arn: str | None = None,
        byte_limit: int = DETECT_BYTE_LIMIT,
        classify_byte_limit: int = CLASSIFY_BYTE_LIMIT,
    ) -> None:
        self.client = client
        self.pii_entity_types = frozenset(pii_entity_types)
        self.min_score = min_score
        self.classifier_endpoint_arn = classifier_endpoint_arn
        self.byte_limit = byte_limit
        self.classify_byte_limit = classify_byte_limit
        self.requests = 0

    def _call(self, name: str, **kwargs: Any) -> dict[str, Any]:
        self.requests += 1
        try:
            return getattr(self.client, name)(**kwargs)
        except Exception as exc:
            raise_if_throttled(exc, "Comprehend")
            raise

    def dominant_language(self, text: str) -> str | None:
        pieces = _pieces(text, self.byte_limit)
        if not pieces:
            return None
        languages = self._call("detect_dominant_language", Text=pieces[0].text).get("Languages", [])
        if not languages:
            return None
        return max(languages, key=lambda lang: lang.get("Score", 0.0))["LanguageCode"]

    def _wanted(self, entity_type: str) -> bool:
        return "ALL" in self.pii_entity_types or entity_type in self.pii_entity_types

    def detect_pii(self, text: str, language: str) -> list[Span]:
        found = []
        for piece in _pieces(text, self.byte_limit):
            response = self._call("detect_pii_entities", Text=piece.text, LanguageCode=language)
            spans = [
                Span(e["BeginOffset"], e["EndOffset"], e["Type"], float(e.get("Score", 1.0)))
                for e in response.get("Entities", [])
                if self._wanted(e["Type"]) and float(e.get("Score", 1.0)) >= self.min_score
            ]
            found.append((piece, spans))
        return merge_piece_spans(found)

    def detect(self, text: str, language: str) -> list[Span]:
        """``PiiDetector`` protocol: the same as ``detect_pii``."""
        return self.detect_pii(text, language)

    def entities(self, text: str, language: str, limit: int = 100) -> list[dict[str, Any]]:
        best: dict[tuple[str, str], float] = {}
        for piece in _pieces(text, self.byte_limit):
            for e in self._call("detect_entities", Text=piece.text, LanguageCode=language).get("Entities", []):
                k = (e["Type"], e["Text"])
                best[k] = max(best.get(k, 0.0), float(e.get("Score", 0.0)))
        ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [{"type": t, "text": s, "score": round(score, 4)} for (t, s), score in ranked]

    def key_phrases(self, text: str, language: str, limit: int = 50) -> list[str]:
        best: dict[str, float] = {}
        for piece in _pieces(text, self.byte_limit):
            for p in self._call("detect_key_phrases", Text=piece.text, LanguageCode=language).get("KeyPhrases", []):
                best[p["Text"]] = max(best.get(p["Text"], 0.0), float(p.get("Score", 0.0)))
        return [t for t, _ in sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]

    def classify(self, text: str) -> dict[str, Any] | None:
        """Classify the document's opening with the custom classifier endpoint, if configured."""
        if not self.classifier_endpoint_arn:
            return None
        pieces = _pieces(text, self.classify_byte_limit)
        if not pieces:
            return None
        response = self._call("classify_document", Text=pieces[0].text, EndpointArn=self.classifier_endpoint_arn)
        classes = sorted(response.get("Classes", []), key=lambda c: -c.get("Score", 0.0))
        labels = response.get("Labels", [])
        return {
            "endpoint_arn": self.classifier_endpoint_arn,
            "classes": [{"name": c["Name"], "score": round(float(c["Score"]), 4)} for c in classes],
            "labels": [{"name": c["Name"], "score": round(float(c["Score"]), 4)} for c in labels],
            "top": classes[0]["Name"] if classes else (labels[0]["Name"] if labels else None),
        }
