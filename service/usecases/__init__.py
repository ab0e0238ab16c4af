"""Use cases: Flask-free, one route to a decision for every way in.

- `assess_hook(runtime, service, hook_request, caller=...)`: a CDS Hooks order-select / order-sign call
- `assess_bundle(runtime, bundle, as_of, caller=...)`: `POST /evaluate`
- `open_questions` / `answer_questions`: the red-flag questions a card offered, and their re-judgement;
  `launched_questions`: the same questions opened by a SMART launch of the card's `smart` link
- `decide(rules, record, orders, as_of)`: the shared step, mappings -> rules -> decision, for every caller
  (the Bulk audit judges each order through it as of its own date)

Each takes parsed input, the Runtime (rules, clock, id factory, store, gatherer) and ports (who called,
where log fields go) and returns the answer; the audit record is written before it returns.
"""

from service.usecases.audit_record import audit_record
from service.usecases.bundle import EVALUATE_SERVICE_ID, BundleAnswer, assess_bundle
from service.usecases.decide import decide, judge
from service.usecases.hook import HookAnswer, assess_hook
from service.usecases.ports import Caller, RequestLog, no_request_log
from service.usecases.questions import (
    AnsweredQuestions,
    OpenQuestions,
    answer_questions,
    launched_questions,
    offer_questions,
    open_questions,
)

__all__ = [
    "EVALUATE_SERVICE_ID",
    "AnsweredQuestions",
    "BundleAnswer",
    "Caller",
    "HookAnswer",
    "OpenQuestions",
    "RequestLog",
    "answer_questions",
    "assess_bundle",
    "assess_hook",
    "audit_record",
    "decide",
    "judge",
    "launched_questions",
    "no_request_log",
    "offer_questions",
    "open_questions",
]
