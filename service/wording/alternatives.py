"""Why another procedure: the engine's codes (kind, merits, urgent red flags) in a clinician's words."""

from __future__ import annotations

from service.rules import Alternative, Rules
from service.rules.decision import AlternativeKind, Merit
from service.wording.phrases import category_phrase, lower_first


def _merit(alternative: Alternative, merit: Merit, rules: Rules) -> str:
    option = alternative.rating
    match merit:
        case Merit.FIRST_LINE:
            assert option.first_line is not None  # the engine names a first-line test only with its citation
            return f"it is the first-line test ({rules.citations[option.first_line].label})"
        case Merit.NO_RADIATION:
            return "it involves no ionising radiation"
        case Merit.LOWER_RADIATION:
            return f"it has a lower radiation level ({option.procedure.radiation.describe()})"
        case Merit.KEEPS_CONTRAST:
            return rules.contrast_preference.text


def alternative_reason(alternative: Alternative, rules: Rules) -> str:
    """One sentence: the alternative's category against the order's, then what else speaks for it."""
    option, ordered = alternative.rating, alternative.ordered
    title, ordered_title = option.procedure.title, lower_first(ordered.procedure.title)
    match alternative.kind:
        case AlternativeKind.BETTER:
            claim = (
                f"{title} is rated {category_phrase(option.appropriateness)}, "
                f"whereas {ordered_title} is rated {category_phrase(ordered.appropriateness)}"
            )
        case AlternativeKind.URGENT:
            flags = " and ".join(rules.flag_title(flag) for flag in alternative.urgent_flags)
            claim = (
                f"{title} is the study to get urgently for {flags} "
                f"({rules.citations[rules.urgent.advice.citation].label}), whereas "
                f"{ordered_title} is rated {category_phrase(ordered.appropriateness)} for it"
            )
        case AlternativeKind.EQUAL:
            claim = f"{title} is also rated {category_phrase(option.appropriateness)}"
    return "; ".join([claim, *(_merit(alternative, merit, rules) for merit in alternative.merits)]) + "."
