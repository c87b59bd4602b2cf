"""``wb.ethics``: a reviewer's answers to an ethics questionnaire, signed off on a version.

    wb.ethics.questionnaire.questions             # the default: intended use, affected groups…
    review = wb.ethics.submit("credit@1.2.0", {"intended_use": "…", …},
                              reviewer="ana", decision="approved", notes="fine for pilots")
    wb.ethics.latest("credit@1.2.0").decision     # "approved"
    wb.ethics.reviews("credit@1.2.0")             # every review, oldest first

A questionnaire is data: a name and questions, each with an id, its text and
whether it must be answered. :data:`DEFAULT_QUESTIONNAIRE` asks about intended
use, affected groups, known limitations, the fairness assessment, privacy and
data consent, human oversight and misuse risks; :func:`load_questionnaire` reads
another from YAML or JSON:

    name: credit-risk-ethics
    questions:
      - id: intended_use
        text: What decisions will the model inform?
      - id: appeal
        text: How can an applicant contest a decision?
        required: false

A review keeps the questionnaire's name and the SHA-256 of its text, the
answers, the decision (``approved``, ``concerns``, ``rejected``), the reviewer,
the time, and a sign-off digest over all of that and the version's content
(its snapshot id). Reading a review re-computes the digest, so a review edited
in the catalog after its sign-off raises ``IntegrityError`` instead of being
believed. The compliance check ``ethics_review`` passes when the latest review
of a version approved it.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select

from weightbase.catalog.base import utcnow
from weightbase.catalog.schema import (
    ETHICS_DECISIONS,
    EthicsReviewRow,
    ModelRow,
    ModelVersionRow,
)
from weightbase.errors import IntegrityError, MissingExtraError, ValidationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder
    from weightbase.registry import ModelRegistry, ModelVersion

__all__ = [
    "DEFAULT_QUESTIONNAIRE",
    "Ethics",
    "EthicsReview",
    "Question",
    "Questionnaire",
    "check_answers",
    "ethics_check",
    "latest_review",
    "load_questionnaire",
    "read_answers",
]

Decision = Literal["approved", "concerns", "rejected"]

_QUESTION_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")


def _digest(data: Any) -> str:
    """SHA-256 of ``data`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Question:
    """One question: an id answers are keyed by, its text, and whether it must be answered."""

    id: str
    text: str
    required: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _QUESTION_ID.match(self.id):
            raise ValidationError(
                f"a question id is lower-case letters, digits and _ (at most 64), not {self.id!r}",
                question=self.id,
            )
        if not isinstance(self.text, str) or not self.text.strip():
            raise ValidationError(f"question {self.id} has no text", question=self.id)
        if not isinstance(self.required, bool):
            raise ValidationError(f"question {self.id}: 'required' is true or false")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "required": self.required}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Question:
        if not isinstance(data, Mapping) or "id" not in data or "text" not in data:
            raise ValidationError(
                f"a question is a mapping with an 'id' and a 'text', not {data!r}"
            )
        unknown = set(data) - {"id", "text", "required"}
        if unknown:
            raise ValidationError(f"unknown question settings: {', '.join(sorted(unknown))}")
        return cls(data["id"], data["text"], data.get("required", True))


@dataclass(frozen=True, slots=True)
class Questionnaire:
    """A named list of questions; ``digest`` identifies its exact text."""

    name: str
    questions: tuple[Question, ...]
    description: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or len(self.name) > 255:
            raise ValidationError("a questionnaire needs a name of 1 to 255 characters")
        object.__setattr__(self, "questions", tuple(self.questions))
        if not self.questions:
            raise ValidationError(f"questionnaire {self.name} has no questions")
        ids = [question.id for question in self.questions]
        repeated = sorted({qid for qid in ids if ids.count(qid) > 1})
        if repeated:
            raise ValidationError(
                f"questionnaire {self.name} repeats question ids: {', '.join(repeated)}"
            )

    @property
    def digest(self) -> str:
        """The SHA-256 of the questionnaire's name, description and questions."""
        return _digest(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "questions": [question.to_dict() for question in self.questions],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Questionnaire:
        if not isinstance(data, Mapping) or "name" not in data or "questions" not in data:
            raise ValidationError("a questionnaire is a mapping with a 'name' and 'questions'")
        unknown = set(data) - {"name", "description", "questions"}
        if unknown:
            raise ValidationError(f"unknown questionnaire settings: {', '.join(sorted(unknown))}")
        questions = data["questions"]
        if not isinstance(questions, Sequence) or isinstance(questions, str):
            raise ValidationError("a questionnaire's 'questions' is a list")
        return cls(
            str(data["name"]),
            tuple(Question.from_dict(question) for question in questions),
            data.get("description"),
        )


#: The built-in questionnaire: the concerns a model's ethics review covers.
DEFAULT_QUESTIONNAIRE = Questionnaire(
    "weightbase-ethics-1",
    (
        Question("intended_use", "What is the model for, and which uses are out of scope?"),
        Question(
            "affected_groups",
            "Which people or groups do the model's outputs affect, directly or indirectly?",
        ),
        Question(
            "known_limitations",
            "What are the model's known limitations and failure modes, and where was it "
            "not evaluated?",
        ),
        Question(
            "fairness_assessment",
            "How was performance compared across the affected groups, and what gaps were found?",
        ),
        Question(
            "privacy_and_consent",
            "Does the training data hold personal data, and under what consent or legal basis "
            "was it collected and used?",
        ),
        Question(
            "human_oversight",
            "How do people oversee, correct or override the model's outputs?",
        ),
        Question("misuse_risks", "How could the model be misused, and what mitigates that?"),
        Question("other_concerns", "Anything else the reviewer wants on record.", required=False),
    ),
    "The default ethics review of a model version.",
)


def load_questionnaire(
    source: str | Path | Mapping[str, Any] | Questionnaire | None = None,
) -> Questionnaire:
    """A questionnaire from a YAML or JSON file or a mapping; the default for None."""
    if source is None:
        return DEFAULT_QUESTIONNAIRE
    if isinstance(source, Questionnaire):
        return source
    if isinstance(source, Mapping):
        return Questionnaire.from_dict(source)
    return Questionnaire.from_dict(_read_mapping(Path(source), "questionnaire"))


def _read_mapping(path: Path, what: str) -> Any:
    """The document in a YAML or JSON file (``what`` names it in errors)."""
    if not path.is_file():
        raise ValidationError(f"no {what} file {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{path} is not valid JSON: {exc}") from exc
    try:
        import yaml
    except ImportError as exc:
        raise MissingExtraError(
            f"reading {path} needs pyyaml: pip install 'weightbase[governance]', or use JSON"
        ) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"{path} is not valid YAML: {exc}") from exc


def read_answers(path: str | Path) -> dict[str, Any]:
    """Answers from a YAML or JSON file: a mapping of question id to answer text."""
    data = _read_mapping(Path(path), "answers")
    if not isinstance(data, Mapping):
        raise ValidationError(f"{path} must hold a mapping of question id to answer")
    return dict(data)


@dataclass(frozen=True, slots=True)
class EthicsReview:
    """A reviewer's signed-off answers on a model version, and their decision."""

    id: int
    model: str
    version: str
    reviewer: str
    decision: str
    questionnaire: str
    questionnaire_digest: str
    answers: Mapping[str, str]
    notes: str | None
    reviewed_at: datetime
    signoff_digest: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "answers", MappingProxyType(dict(self.answers)))

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    @property
    def approved(self) -> bool:
        return self.decision == "approved"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "reviewer": self.reviewer,
            "decision": self.decision,
            "questionnaire": self.questionnaire,
            "questionnaire_digest": self.questionnaire_digest,
            "answers": dict(self.answers),
            "notes": self.notes,
            "reviewed_at": self.reviewed_at.isoformat(),
            "signoff_digest": self.signoff_digest,
        }


def _signed_fields(
    row: EthicsReviewRow, model: str, version: str, snapshot_id: str
) -> dict[str, Any]:
    """What a sign-off digest covers: the review and the version's content."""
    return {
        "model": model,
        "version": version,
        "snapshot_id": snapshot_id,
        "reviewer": row.reviewer,
        "decision": row.decision,
        "questionnaire": row.questionnaire,
        "questionnaire_digest": row.questionnaire_digest,
        "answers": dict(row.answers),
        "notes": row.notes,
        "reviewed_at": row.reviewed_at.isoformat(),
    }


def check_answers(questionnaire: Questionnaire, answers: Mapping[str, Any]) -> dict[str, str]:
    """The answers to keep (stripped, blanks dropped); ``ValidationError`` naming every problem."""
    if not isinstance(answers, Mapping):
        raise ValidationError("answers are a mapping of question id to answer text")
    known = {question.id for question in questionnaire.questions}
    unknown = sorted(str(key) for key in answers if key not in known)
    not_text = sorted(str(k) for k, v in answers.items() if k in known and not isinstance(v, str))
    kept = {
        str(key): value.strip()
        for key, value in answers.items()
        if key in known and isinstance(value, str) and value.strip()
    }
    missing = [
        q.id
        for q in questionnaire.questions
        if q.required and q.id not in kept and q.id not in not_text
    ]
    problems = []
    if missing:
        problems.append(f"no answer to required questions {', '.join(missing)}")
    if unknown:
        problems.append(
            f"questionnaire {questionnaire.name} has no questions {', '.join(unknown)} "
            f"(it asks {', '.join(q.id for q in questionnaire.questions)})"
        )
    if not_text:
        problems.append(f"answers must be text (quote yes/no in YAML): {', '.join(not_text)}")
    if problems:
        raise ValidationError(
            "; ".join(problems),
            missing=tuple(missing),
            unknown=tuple(unknown),
            not_text=tuple(not_text),
        )
    return kept


class Ethics:
    """Ethics reviews of model versions: submitted, signed off, read back verified."""

    def __init__(
        self, catalog: Catalog, *, recorder: ChangeRecorder, models: ModelRegistry
    ) -> None:
        self._catalog = catalog
        self._recorder = recorder
        self._models = models

    @property
    def questionnaire(self) -> Questionnaire:
        """The questionnaire a review answers when it names no other."""
        return DEFAULT_QUESTIONNAIRE

    def submit(
        self,
        ref: ModelVersion | str,
        answers: Mapping[str, Any],
        *,
        decision: Decision,
        reviewer: str | None = None,
        notes: str | None = None,
        questionnaire: str | Path | Mapping[str, Any] | Questionnaire | None = None,
    ) -> EthicsReview:
        """Sign off ``answers`` to ``questionnaire`` (default: the built-in one) on ``ref``.

        Every required question needs a non-blank answer and every answer a
        question of the questionnaire; otherwise ``ValidationError`` names them
        all and nothing is stored. The reviewer defaults to the acting user.
        """
        asked = load_questionnaire(questionnaire)
        kept = check_answers(asked, answers)
        if decision not in ETHICS_DECISIONS:
            raise ValidationError(
                f"a decision is one of {', '.join(ETHICS_DECISIONS)}, not {decision!r}"
            )
        who = reviewer or self._recorder.actor
        if not isinstance(who, str) or not who.strip() or len(who) > 255:
            raise ValidationError(f"invalid reviewer name {who!r}")
        if notes is not None and not isinstance(notes, str):
            raise ValidationError("notes are text")
        found = self._models.version(ref)

        def work(session: Session) -> EthicsReview:
            row = EthicsReviewRow(
                version_id=found.id,
                reviewer=who,
                decision=decision,
                questionnaire=asked.name,
                questionnaire_digest=asked.digest,
                answers=kept,
                notes=notes or None,
                # Set here, not by the column default: the digest covers it.
                reviewed_at=utcnow(),
            )
            row.signoff_digest = _digest(
                _signed_fields(row, found.model, found.version, found.snapshot_id)
            )
            session.add(row)
            session.flush()
            after = {
                "review": row.id,
                "version": found.version,
                "decision": decision,
                "reviewer": who,
                "questionnaire": asked.name,
                "signoff_digest": row.signoff_digest,
            }
            self._recorder.record(
                session,
                "ethics.review",
                "model",
                found.model_id,
                after=after,
                reason=notes or None,
                event="ethics_reviewed",
                payload={"model": found.model, **after},
            )
            return _verified(row, found.model, found.version, found.snapshot_id)

        return self._catalog.write(work)

    def reviews(self, ref: ModelVersion | str) -> builtins.list[EthicsReview]:
        """Every review of a version, oldest first; ``IntegrityError`` if one was edited."""
        found = self._models.version(ref)
        with self._catalog.session() as session:
            rows = session.scalars(
                select(EthicsReviewRow)
                .where(EthicsReviewRow.version_id == found.id)
                .order_by(EthicsReviewRow.id)
            )
            return [_verified(row, found.model, found.version, found.snapshot_id) for row in rows]

    def latest(self, ref: ModelVersion | str) -> EthicsReview | None:
        """The version's latest review, verified; None if it was never reviewed."""
        found = self._models.version(ref)
        with self._catalog.session() as session:
            return latest_review(session, found.id)


def latest_review(session: Session, version_id: int) -> EthicsReview | None:
    """The latest review of the version ``version_id``, verified, in the caller's session."""
    row = session.scalars(
        select(EthicsReviewRow)
        .where(EthicsReviewRow.version_id == version_id)
        .order_by(EthicsReviewRow.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    model, version, snapshot_id = session.execute(
        select(ModelRow.name, ModelVersionRow.version, ModelVersionRow.snapshot_id)
        .join(ModelRow, ModelRow.id == ModelVersionRow.model_id)
        .where(ModelVersionRow.id == version_id)
    ).one()
    return _verified(row, model, version, snapshot_id)


def ethics_check(session: Session, version_id: int) -> tuple[bool | None, str, dict[str, Any]]:
    """The compliance check ``ethics_review``: passed, detail and figures, from the latest review.

    Passed when it approved the version; failed when it raised concerns, rejected
    it, or was edited after its sign-off; not evaluated (None) when there is none.
    """
    try:
        review = latest_review(session, version_id)
    except IntegrityError as exc:
        return False, str(exc), {"review": exc.context.get("review")}
    if review is None:
        return None, "the version was never reviewed for ethics", {}
    when = review.reviewed_at.strftime("%Y-%m-%d")
    return (
        review.approved,
        f"{review.decision} by {review.reviewer} on {when}",
        {"review": review.id, "decision": review.decision, "reviewer": review.reviewer},
    )


def _verified(row: EthicsReviewRow, model: str, version: str, snapshot_id: str) -> EthicsReview:
    if _digest(_signed_fields(row, model, version, snapshot_id)) != row.signoff_digest:
        raise IntegrityError(
            f"ethics review {row.id} of {model}@{version} was changed after its sign-off "
            "(its sign-off digest does not match what is stored)",
            review=row.id,
            version=f"{model}@{version}",
        )
    return EthicsReview(
        id=row.id,
        model=model,
        version=version,
        reviewer=row.reviewer,
        decision=row.decision,
        questionnaire=row.questionnaire,
        questionnaire_digest=row.questionnaire_digest,
        answers=dict(row.answers),
        notes=row.notes,
        reviewed_at=row.reviewed_at,
        signoff_digest=row.signoff_digest,
    )
