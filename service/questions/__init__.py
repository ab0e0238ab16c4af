"""Ask only for what is missing: red-flag questions for what the record could not show, answered as a
FHIR QuestionnaireResponse and re-judged through the same route as the hook (`service.usecases.judge`).

- `catalog`: the questions, from the red-flag criteria and the rules (once, at start-up)
- `questionnaire`: the FHIR Questionnaire, for the whole rules set or for one assessment
- `responses`: a QuestionnaireResponse read strictly into `ClinicianAnswer`s (4xx naming what is wrong)
- `tokens`: the signed, single-purpose, short-lived link token
- `snapshot`: the findings kept until the questions are answered (codes and references, no record text)
- `smart`: SMART App Launch of the questions page, for EHRs that open a card's `smart` link
"""

from service.questions.catalog import Question, QuestionCatalog
from service.questions.tokens import QuestionsToken, TokenSigner

__all__ = ["Question", "QuestionCatalog", "QuestionsToken", "TokenSigner"]
