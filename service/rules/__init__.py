"""Imaging-appropriateness rules: the knowledge file's loader and the pure engine (no Flask here).

- `load_rules(path=None) -> Rules`: load and validate the knowledge file once, at start-up.
- `assess(findings, rules) -> Decision`: judge a patient and their lumbar imaging orders.
"""

from .decision import (
    Alternative,
    Applicability,
    Appropriateness,
    Decision,
    OrderJudgement,
    PamaRating,
    PossibleVariant,
    Rating,
    RatingWithheld,
    VariantMatch,
)
from .engine import assess
from .loader import DEFAULT_RULES_PATH, load_rules
from .model import Category, Cell, Citation, Procedure, Provenance, Rules, RulesError, Variant

__all__ = [
    "DEFAULT_RULES_PATH",
    "Alternative",
    "Applicability",
    "Appropriateness",
    "Category",
    "Cell",
    "Citation",
    "Decision",
    "OrderJudgement",
    "PamaRating",
    "PossibleVariant",
    "Procedure",
    "Provenance",
    "Rating",
    "RatingWithheld",
    "Rules",
    "RulesError",
    "Variant",
    "VariantMatch",
    "assess",
    "load_rules",
]
