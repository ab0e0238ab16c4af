"""The card's Markdown detail: verdict, urgency, better choice, variants, red flags with evidence,
what could not be checked, and the sources cited."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fhir_mappings.model import Evidence, RedFlag
from service.rules import Alternative, Applicability, Decision, OrderJudgement, RatingWithheld
from service.rules.model import Citation, Rules
from service.wording.alternatives import alternative_reason
from service.wording.gaps import gap_description
from service.wording.phrases import category_phrase, lower_first, md, procedure_title

_SYSTEM_NAMES = {
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://snomed.info/sct": "SNOMED CT",
    "http://loinc.org": "LOINC",
    "http://www.ama-assn.org/go/cpt": "CPT",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
}


def _evidence_line(evidence: Evidence) -> str:
    parts = [md(evidence.reference)]
    if evidence.code:
        system = _SYSTEM_NAMES.get(evidence.system or "", evidence.system or "")
        code = f"{system} {evidence.code}".strip()
        parts.append(md(code) + (f" “{md(evidence.display)}”" if evidence.display else ""))
    elif evidence.display:
        parts.append(f"“{md(evidence.display)}”")
    if evidence.date:
        parts.append(md(evidence.date))
    if evidence.detail:
        parts.append(md(evidence.detail))
    return ", ".join(parts)


def _flag_lines(decision: Decision, flags: Iterable[RedFlag]) -> list[str]:
    lines = []
    for flag in flags:
        lines.append(f"- **{decision.rules.flag_title(flag.id).capitalize()}**")
        lines.extend(f"  - {_evidence_line(evidence)}" for evidence in flag.evidence)
    return lines


def _cite(citation: Citation) -> str:
    return f"[{md(citation.label)}]({citation.link})"


_INPUT_WORDS = {
    "patient": "the patient's demographics",
    "conditions": "conditions",
    "observations": "observations (temperature, weight)",
    "medications": "medication records",
    "procedures": "procedures",
    "serviceRequests": "referrals and orders",
}


def _unchecked_lines(decision: Decision, judgement: OrderJudgement) -> list[str]:
    rules = decision.rules
    lines = []
    explained = {affected for gap in decision.data_gaps for affected in gap.affects}
    for flag in decision.unchecked_flags:
        if flag.id in explained:
            continue  # the data gap below says it in the mappings' words
        inputs = ", ".join(_INPUT_WORDS.get(kind.value, kind.value) for kind in flag.unchecked)
        why = f": {inputs} not supplied" if inputs else ""
        lines.append(f"- {rules.flag_title(flag.id).capitalize()} could not be checked{why}.")
    lines.extend(f"- {md(gap_description(gap))}" for gap in decision.data_gaps)
    if judgement.applicable:
        for possible in decision.possible_variants:
            unknown = ", ".join(rules.term_title(term) for term in possible.unchecked)
            variant = f"{possible.id} ({possible.variant.title})"
            lines.append(f"- {variant} could apply, depending on what could not be checked: {unknown}.")
        if judgement.if_unchecked_present is not None:
            would_be = category_phrase(judgement.if_unchecked_present)
            lines.append(f"- If these were present, this order would be rated **{would_be}**.")
    return lines


def _variant_lines(decision: Decision, cite: Callable[[str], str]) -> list[str]:
    lines = []
    for match in decision.variants:
        line = f"- {match.id}: {match.variant.title}"
        if match.variant.conservative_care_first and decision.unchecked_flags:
            line += " (among the red flags that could be checked)"
        if match.triggered_by:
            line += (
                f"; triggered by {', '.join(decision.rules.term_title(term) for term in match.triggered_by)}"
            )
        lines.append(f"{line} ({cite(match.variant.citation)})")
    return lines


def _unchecked_urgent_lines(decision: Decision) -> list[str]:
    """Urgent red flags that could not be checked: said at the top, since missing them is dangerous."""
    rules = decision.rules
    lines = []
    for flag_id in decision.urgent_unchecked:
        flag = decision.findings.red_flags.get(flag_id)
        inputs = (
            ", ".join(_INPUT_WORDS.get(kind.value, kind.value) for kind in flag.unchecked) if flag else ""
        )
        why = f" ({inputs} missing, partly supplied or unreadable)" if inputs else ""
        lines.append(
            f"**{rules.flag_title(flag_id).capitalize()} could not be checked**{why}. "
            f"If present, this is urgent: {lower_first(rules.urgent.advice.text)}"
        )
    return lines


def _flag_blocks(decision: Decision, judgement: OrderJudgement, cite: Callable[[str], str]) -> list[str]:
    """Red flags found, then weak risk factors under their own heading (never called red flags).

    A flag another one implies (age over 50 beside age over 70) is left out: the same fact, said once.
    """
    rules = decision.rules
    shown = set(rules.without_implied(decision.red_flag_ids()))
    weak = [flag for flag in decision.weak_factors if flag.id in shown]
    weak_ids = {flag.id for flag in weak}
    red = [flag for flag in decision.red_flags if flag.id in shown and flag.id not in weak_ids]
    blocks = []
    if red:
        blocks.append("**Red flags found**\n" + "\n".join(_flag_lines(decision, red)))
    elif weak:
        blocks.append("**Red flags requiring imaging:** none in the data supplied.")
    elif judgement.applicable:
        blocks.append("**Red flags found:** none in the data supplied.")
    if weak:
        block = "**Risk factor, not enough alone to call for imaging**\n" + "\n".join(
            _flag_lines(decision, weak)
        )
        if judgement.applicable and decision.conservative_care_first:  # else a red flag calls for it
            advice = rules.weak_factors.advice
            block += f"\n\n{advice.text} ({cite(advice.citation)})"
        blocks.append(block)
    return blocks


_WITHHELD_WHY = {
    RatingWithheld.UNCHECKED_DATA: "what could not be checked would change it",
    RatingWithheld.LOW_BACK_PAIN_UNCONFIRMED: "it is not known whether low back pain criteria apply",
}


def _withheld_why(judgement: OrderJudgement, withheld: RatingWithheld) -> str:
    why = _WITHHELD_WHY[withheld]
    would_be = judgement.if_unchecked_present
    if withheld is RatingWithheld.UNCHECKED_DATA and would_be is not None:
        why += f" (it would be {would_be.pama_rating.value} if those findings were present)"
    return why


def withheld_rating_reason(judgement: OrderJudgement) -> str | None:
    """Why no PAMA rating was written into the order, in a clinician's words; None when it was."""
    withheld = judgement.rating_withheld
    if withheld is None:
        return None
    return f"No PAMA rating was recorded on the order: {_withheld_why(judgement, withheld)}."


def _pama_phrase(judgement: OrderJudgement) -> str:
    withheld = judgement.rating_withheld
    if withheld is None:
        return f"PAMA rating: {judgement.pama_rating.value}"
    return (
        f"provisional; no PAMA rating was recorded on the order, since {_withheld_why(judgement, withheld)}"
    )


def _option_block(
    heading: str, option: Alternative, tail: str, rules: Rules, cite: Callable[[str], str]
) -> str:
    cells = ", ".join(f"{cell.variant} {cite(cell.citation)}" for cell in option.rating.cells)
    if option.rating.first_line:
        cells += f", {cite(option.rating.first_line)}"
    return f"**{heading}:** {alternative_reason(option, rules)} ({cells}){tail}"


def card_detail(decision: Decision, judgement: OrderJudgement) -> str:
    """Markdown: verdict, urgency, better choice, variants, red flags with evidence, gaps, sources."""
    rules = decision.rules
    title = procedure_title(judgement)
    cited: dict[str, Citation] = {}

    def cite(citation_id: str) -> str:
        citation = rules.citations[citation_id]
        cited[citation_id] = citation
        return _cite(citation)

    blocks: list[str] = []
    if decision.urgent:
        flags = " and ".join(rules.flag_title(flag) for flag in decision.urgent_flags)
        blocks.append(
            f"**{rules.urgent.advice.text}** Reason: {flags} ({cite(rules.urgent.advice.citation)})."
        )
    unchecked_urgent = _unchecked_urgent_lines(decision)
    if unchecked_urgent:
        cite(rules.urgent.advice.citation)
        blocks.extend(unchecked_urgent)
    if judgement.applicability is Applicability.UNDETERMINED:
        blocks.append(
            "**The low back pain diagnosis could not be confirmed from the record** (Conditions were "
            "missing, partly supplied or unreadable; see below). This order is judged as if it were for "
            "low back pain, the safer reading; if it is not, no ACR low back pain criteria apply."
        )
    if not judgement.applicable:
        why = (
            "the rules do not rate this procedure"
            if judgement.procedure is None
            else "the patient has no active low back pain condition and the order's reason names neither low "
            "back pain nor a red flag"
        )
        blocks.append(f"No ACR low back pain criteria apply to this {lower_first(title)}: {why}.")
        if judgement.alternative is not None:  # the urgent study: urgency does not depend on the criteria
            blocks.append(_option_block("Urgent study", judgement.alternative, "", rules, cite))
    else:
        procedure = judgement.procedure
        assert procedure is not None  # applicable orders have a known procedure
        decided_by = "; ".join(
            f"variant {cell.variant}, {cell.provenance.value} ({cite(cell.citation)})"
            for cell in judgement.cells
        )
        first_line = (
            f"\n- First-line test here ({cite(judgement.first_line)})" if judgement.first_line else ""
        )
        category = category_phrase(judgement.appropriateness)
        blocks.append(
            f"**{title}** is rated **{category}** ({_pama_phrase(judgement)}).\n\n"
            f"- Radiation: {procedure.radiation.describe()} ({cite(procedure.radiation_citation)})\n"
            f"- Decided by: {decided_by}{first_line}"
        )
        better_heading = (
            "Urgent study" if judgement.alternative and judgement.alternative.urgent else "Better choice"
        )
        for heading, option, tail in (
            (better_heading, judgement.alternative, ""),
            ("Equally appropriate option", judgement.equal_option, " The order need not change."),
        ):
            if option is not None:
                blocks.append(_option_block(heading, option, tail, rules, cite))
        blocks.append("**Variants applied**\n" + "\n".join(_variant_lines(decision, cite)))
    blocks.extend(_flag_blocks(decision, judgement, cite))
    if judgement.applicable and decision.conservative_care_first:
        care = rules.conservative_care.advice
        therapy = decision.findings.therapy
        documented = (
            " Conservative therapy is documented in this episode: "
            + "; ".join(_evidence_line(evidence) for evidence in therapy.evidence)
            + "."
            if therapy.documented and therapy.evidence
            else ""
        )
        blocks.append(f"**Conservative care first:** {care.text} ({cite(care.citation)}){documented}")
    unchecked = _unchecked_lines(decision, judgement)
    if unchecked:
        blocks.append("**Could not be checked**\n" + "\n".join(unchecked))
    cite(rules.guideline.citation.id)
    blocks.append(
        "**Sources**\n"
        + "\n".join(f"- {_cite(citation)}: {md(citation.reference())}" for citation in cited.values())
    )
    return "\n\n".join(blocks)
