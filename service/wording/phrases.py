"""Small phrases every part of a card uses: procedure titles, categories in words, safe Markdown."""

from __future__ import annotations

from service.rules import Appropriateness, OrderJudgement

_MARKDOWN_SPECIAL = str.maketrans({char: f"\\{char}" for char in "\\`*_{}[]()<>#+!|~"})


def procedure_title(judgement: OrderJudgement) -> str:
    if judgement.procedure is not None:
        return judgement.procedure.title
    return judgement.order.coding.display or "This lumbar imaging order"


def category_phrase(appropriateness: Appropriateness) -> str:
    """`usually-not-appropriate` -> `usually not appropriate`."""
    return appropriateness.value.replace("-", " ")


def lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def md(text: str) -> str:
    """Record text in Markdown: escaped, one line, so it can neither format nor inject links."""
    return " ".join(text.split()).translate(_MARKDOWN_SPECIAL)
