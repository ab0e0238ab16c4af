"""The `POST /evaluate` answer: the decision as plain JSON for systems that are not CDS clients.

Facts about the patient that are not known are `null`, never guessed; `dataGaps`, `uncheckedRedFlags`
and `possibleVariants` say what could not be checked. Each order carries the same values as its card's
`lbp-imaging-cds` extension (built by the same function), plus the card's summary and indicator.
`episode.evidence` holds the low back pain Conditions, then the conservative therapy records;
`episode.lowBackPainDiagnosis` says whether the record confirms it (`could-not-be-determined` when the
Conditions were missing, partial or unreadable: orders are then judged as if criteria apply).
An order whose PAMA rating cannot be determined (unchecked data would change it, or it is not known
whether criteria apply) has no `pamaRating`, as no rating is written into it, but `pamaRatingWithheld`
saying why; its `appropriateness` is the provisional verdict on what is known.
`urgentUnchecked` names the urgent red flags (cauda equina, severe neurologic deficit) that could not
be checked.
When no low back pain criteria apply to the patient, each modality reads `no-criteria-apply` (with its
least-irradiating procedure) and `recommended` is null; `recommended` is null too when no imaging is
appropriate (low back pain without red flags).
"""

from __future__ import annotations

from typing import Any

from fhir_mappings.model import DataGap, Evidence, RedFlag
from service.cds.cards import card_indicator, order_verdict
from service.rules import Alternative, Decision, OrderJudgement, Rating
from service.rules.model import Cell, Rules
from service.wording.alternatives import alternative_reason
from service.wording.detail import withheld_rating_reason
from service.wording.gaps import gap_description
from service.wording.summary import card_summary


def _evidence(evidence: Evidence) -> dict[str, str]:
    fields = {
        "reference": evidence.reference,
        "system": evidence.system,
        "code": evidence.code,
        "display": evidence.display,
        "date": evidence.date,
        "detail": evidence.detail,
    }
    return {key: value for key, value in fields.items() if value}


def _red_flag(flag: RedFlag) -> dict[str, Any]:
    return {"id": flag.id, "evidence": [_evidence(item) for item in flag.evidence]}


def _gap(gap: DataGap) -> dict[str, Any]:
    answer: dict[str, Any] = {"id": gap.id, "kind": gap.kind.value, "description": gap_description(gap)}
    if gap.affects:
        answer["affects"] = list(gap.affects)
    return answer


def _rating(rating: Rating) -> dict[str, Any]:
    return {
        "procedure": rating.procedure.id,
        "appropriateness": rating.appropriateness.value,
        "radiation": rating.procedure.radiation.label,
    }


def _cell(cell: Cell) -> dict[str, Any]:
    return {
        "variant": cell.variant,
        "procedure": cell.procedure,
        "category": cell.category.value,
        "provenance": cell.provenance.value,
        "citation": cell.citation,
    }


def _option(option: Alternative, rules: Rules) -> dict[str, Any]:
    answer = {
        **_rating(option.rating),
        "kind": option.kind.value,
        "merits": [merit.value for merit in option.merits],
    }
    if option.urgent_flags:
        answer["urgentRedFlags"] = list(option.urgent_flags)
    answer["reason"] = alternative_reason(option, rules)
    return answer


def _episode_diagnosis(decision: Decision) -> str:
    if decision.findings.episode.active:
        return "active"
    return "could-not-be-determined" if decision.episode_undetermined else "none-found"


def _order(decision: Decision, judgement: OrderJudgement, assessment_id: str) -> dict[str, Any]:
    answer = order_verdict(decision, judgement, assessment_id=assessment_id)
    del answer["assessmentId"]  # once, at the top of the answer
    withheld = judgement.rating_withheld
    if withheld is None:
        answer["pamaRating"] = judgement.pama_rating.value
    else:
        answer["pamaRatingWithheld"] = {
            "reason": withheld.value,
            "description": withheld_rating_reason(judgement),
        }
    answer["summary"] = card_summary(decision, judgement)
    answer["indicator"] = card_indicator(decision, judgement)
    if judgement.cells:
        answer["decidedBy"] = [_cell(cell) for cell in judgement.cells]
    if judgement.alternative is not None:
        answer["alternative"] = _option(judgement.alternative, decision.rules)
    if judgement.equal_option is not None:
        answer["equalOption"] = _option(judgement.equal_option, decision.rules)
    if judgement.if_unchecked_present is not None:
        answer["ifUncheckedPresent"] = judgement.if_unchecked_present.value
    return answer


def evaluate_answer(decision: Decision, *, assessment_id: str) -> dict[str, Any]:
    """The `/evaluate` JSON for a decision (schema `EvaluateAnswer` in openapi.yaml)."""
    findings = decision.findings
    rules = decision.rules
    return {
        "assessmentId": assessment_id,
        "asOf": findings.as_of.isoformat(),
        "rulesVersion": decision.rules_version,
        "patient": {
            "reference": findings.patient_reference,
            "ageYears": findings.age_years,
            "sex": findings.sex,
        },
        "episode": {
            "symptomDays": findings.episode.symptom_days,
            "lowBackPainDiagnosis": _episode_diagnosis(decision),
            "conservativeTherapy": findings.therapy.documented,
            "evidence": [
                _evidence(item) for item in (*findings.episode.evidence, *findings.therapy.evidence)
            ],
        },
        "redFlags": [_red_flag(flag) for flag in decision.red_flags],
        "uncheckedRedFlags": [
            {"id": flag.id, "unchecked": [kind.value for kind in flag.unchecked]}
            for flag in decision.unchecked_flags
        ],
        "weakFactors": [flag.id for flag in decision.weak_factors],
        "variants": [
            {"id": match.id, "title": match.variant.title, "triggeredBy": list(match.triggered_by)}
            for match in decision.variants
        ],
        "possibleVariants": [
            {"id": possible.id, "title": possible.variant.title, "unchecked": list(possible.unchecked)}
            for possible in decision.possible_variants
        ],
        "urgent": decision.urgent,
        "urgentUnchecked": list(decision.urgent_unchecked),
        "modalities": {modality: _rating(rating) for modality, rating in decision.modalities.items()},
        "recommended": _rating(decision.recommended) if decision.recommended is not None else None,
        "orders": [_order(decision, judgement, assessment_id) for judgement in decision.orders],
        "dataGaps": [_gap(gap) for gap in decision.data_gaps],
        "citations": [
            {"id": citation.id, "reference": citation.reference(), "url": citation.link}
            for citation in rules.citations.values()
        ],
    }
