"""Free-text HPO extraction (label + synonym matching with simple negation handling)."""

from genedx.extract.text import ExtractedTerm, TermExtractor, stem

__all__ = ["ExtractedTerm", "TermExtractor", "stem"]
