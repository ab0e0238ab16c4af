"""A decision's verdict in a few codes, kept with the answers (before and after) and compared to count how
often answers changed it: per order the appropriateness, the rating written (or why withheld) and the
urgency; with the variants and red flags that led there. `AnswersRecord.changed` compares the orders'
appropriateness and urgency only: a flag settled, or a withheld rating made final, is not a change."""

from __future__ import annotations

from typing import Any

from service.rules import Decision


def verdict_summary(decision: Decision) -> dict[str, Any]:
    return {
        "orders": [
            {
                "order": judgement.order.reference,
                "appropriateness": judgement.appropriateness.value,
                "pamaRating": None if judgement.rating_withheld else judgement.pama_rating.value,
                "urgent": decision.urgent,
            }
            for judgement in decision.orders
        ],
        "variants": list(decision.variant_ids()),
        "redFlags": list(decision.red_flag_ids()),
        "uncheckedRedFlags": [flag.id for flag in decision.unchecked_flags],
    }
