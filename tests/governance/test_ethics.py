"""Ethics reviews: a questionnaire as data, answers checked, sign-off kept and verified."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update

from weightbase.catalog.schema import EthicsReviewRow
from weightbase.errors import IntegrityError, NotFound, ValidationError
from weightbase.governance.ethics import (
    DEFAULT_QUESTIONNAIRE,
    Question,
    Questionnaire,
    load_questionnaire,
    read_answers,
)
from weightbase.workspace import Workspace

CONCERNS = [
    "intended_use",
    "affected_groups",
    "known_limitations",
    "fairness_assessment",
    "privacy_and_consent",
    "human_oversight",
    "misuse_risks",
]
ANSWERS = {question: f"answer to {question}" for question in CONCERNS}


@pytest.fixture
def version(workspace: Workspace) -> str:
    return workspace.models.push("credit", {"w": np.ones((4, 2), dtype=np.float32)}).ref


def test_the_default_questionnaire_asks_the_seven_concerns() -> None:
    required = [q.id for q in DEFAULT_QUESTIONNAIRE.questions if q.required]
    assert required == CONCERNS
    optional = [q.id for q in DEFAULT_QUESTIONNAIRE.questions if not q.required]
    assert optional == ["other_concerns"]
    assert load_questionnaire() is DEFAULT_QUESTIONNAIRE
    assert len(DEFAULT_QUESTIONNAIRE.digest) == 64
    reworded = Questionnaire(
        DEFAULT_QUESTIONNAIRE.name,
        (Question("intended_use", "What is it for?"), *DEFAULT_QUESTIONNAIRE.questions[1:]),
    )
    assert reworded.digest != DEFAULT_QUESTIONNAIRE.digest


def test_a_complete_review_is_signed_off_on_the_version(workspace: Workspace, version: str) -> None:
    review = workspace.ethics.submit(
        version,
        {**ANSWERS, "intended_use": "  scoring loan applications  ", "other_concerns": " "},
        decision="approved",
        reviewer="ana",
        notes="fine for the pilot",
    )
    assert (review.ref, review.reviewer, review.decision, review.approved) == (
        version,
        "ana",
        "approved",
        True,
    )
    assert review.answers["intended_use"] == "scoring loan applications"
    assert "other_concerns" not in review.answers  # blank optional answers are not kept
    assert review.questionnaire == DEFAULT_QUESTIONNAIRE.name
    assert review.questionnaire_digest == DEFAULT_QUESTIONNAIRE.digest
    assert len(review.signoff_digest) == 64
    assert workspace.ethics.reviews(version) == [review]
    assert workspace.ethics.latest(version) == review
    data = review.to_dict()
    assert data["answers"] == dict(review.answers)
    assert data["reviewed_at"] == review.reviewed_at.isoformat()

    model_id = workspace.models.get("credit").id
    [entry] = workspace.audit.entries("model", model_id, action="ethics.review")
    assert entry.actor == "test-user"
    assert entry.after is not None
    assert entry.after["decision"] == "approved"
    assert entry.after["signoff_digest"] == review.signoff_digest
    assert entry.reason == "fine for the pilot"
    [event] = workspace.events.history("ethics_reviewed")
    assert event.payload["model"] == "credit"
    assert event.payload["reviewer"] == "ana"


def test_the_reviewer_defaults_to_the_actor_and_the_latest_review_wins(
    workspace: Workspace, version: str
) -> None:
    assert workspace.ethics.latest(version) is None
    assert workspace.ethics.reviews(version) == []
    first = workspace.ethics.submit(version, ANSWERS, decision="concerns")
    second = workspace.ethics.submit(version, ANSWERS, decision="approved", reviewer="ben")
    assert first.reviewer == "test-user"
    assert [r.decision for r in workspace.ethics.reviews(version)] == ["concerns", "approved"]
    assert workspace.ethics.latest(version) == second


def test_an_incomplete_review_names_every_problem_and_stores_nothing(
    workspace: Workspace, version: str
) -> None:
    answers = {**ANSWERS, "surprise": "?", "human_oversight": True}
    del answers["misuse_risks"]
    answers["fairness_assessment"] = "   "
    with pytest.raises(ValidationError) as raised:
        workspace.ethics.submit(version, answers, decision="approved")
    error = raised.value
    assert error.missing == ("fairness_assessment", "misuse_risks")  # type: ignore[attr-defined]
    assert error.unknown == ("surprise",)  # type: ignore[attr-defined]
    assert error.not_text == ("human_oversight",)  # type: ignore[attr-defined]
    message = str(error)
    assert "no answer to required questions fairness_assessment, misuse_risks" in message
    assert "has no questions surprise" in message
    assert "answers must be text" in message
    with pytest.raises(ValidationError, match="a decision is one of approved, concerns"):
        workspace.ethics.submit(version, ANSWERS, decision="fine")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="mapping"):
        workspace.ethics.submit(version, ["yes"], decision="approved")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        workspace.ethics.submit("credit@9.9.9", ANSWERS, decision="approved")
    assert workspace.ethics.reviews(version) == []
    assert workspace.audit.entries(action="ethics.review") == []


def test_a_custom_questionnaire_from_yaml_or_json(
    workspace: Workspace, version: str, tmp_path: Path
) -> None:
    custom = {
        "name": "credit-ethics",
        "questions": [
            {"id": "decisions", "text": "What decisions will the model inform?"},
            {"id": "appeal", "text": "How can an applicant contest a decision?", "required": False},
        ],
    }
    as_json = tmp_path / "questionnaire.json"
    as_json.write_text(json.dumps(custom))
    as_yaml = tmp_path / "questionnaire.yaml"
    as_yaml.write_text(
        "name: credit-ethics\nquestions:\n"
        "  - id: decisions\n    text: What decisions will the model inform?\n"
        "  - id: appeal\n    text: How can an applicant contest a decision?\n"
        "    required: false\n"
    )
    assert load_questionnaire(as_json) == load_questionnaire(as_yaml) == load_questionnaire(custom)
    answers = tmp_path / "answers.yaml"
    answers.write_text("decisions: credit limits only\n")
    review = workspace.ethics.submit(
        version, read_answers(answers), decision="approved", questionnaire=as_yaml
    )
    assert review.questionnaire == "credit-ethics"
    assert review.questionnaire_digest == load_questionnaire(custom).digest
    assert dict(review.answers) == {"decisions": "credit limits only"}
    with pytest.raises(ValidationError, match="credit-ethics has no questions affected_groups, "):
        workspace.ethics.submit(version, ANSWERS, decision="approved", questionnaire=custom)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"name": "q", "questions": []}, "has no questions"),
        ({"name": "q", "questions": [{"id": "a", "text": "A?"}] * 2}, "repeats question ids: a"),
        ({"name": "q", "questions": [{"id": "A b", "text": "?"}]}, "question id"),
        ({"name": "q", "questions": [{"id": "a", "text": " "}]}, "has no text"),
        ({"name": "q", "questions": [{"id": "a", "text": "A?", "weight": 2}]}, "weight"),
        ({"name": "q", "questions": [{"id": "a", "text": "A?", "required": "no"}]}, "true or"),
        ({"name": "q", "questions": [{"id": "a"}]}, "an 'id' and a 'text'"),
        ({"name": "q", "questions": "a"}, "is a list"),
        ({"questions": []}, "a 'name' and 'questions'"),
        ({"name": "", "questions": [{"id": "a", "text": "A?"}]}, "a name of 1 to 255"),
    ],
)
def test_a_malformed_questionnaire_is_refused(document: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load_questionnaire(document)


def test_questionnaire_and_answer_files_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no questionnaire file"):
        load_questionnaire(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ValidationError, match="not valid JSON"):
        load_questionnaire(broken)
    listed = tmp_path / "answers.yaml"
    listed.write_text("- yes\n")
    with pytest.raises(ValidationError, match="mapping of question id"):
        read_answers(listed)


def test_a_review_edited_after_its_sign_off_is_detected(workspace: Workspace, version: str) -> None:
    review = workspace.ethics.submit(version, ANSWERS, decision="rejected", reviewer="ana")
    with workspace.catalog.transaction() as session:
        session.execute(
            update(EthicsReviewRow)
            .where(EthicsReviewRow.id == review.id)
            .values(decision="approved")
        )
    with pytest.raises(IntegrityError, match="changed after its sign-off") as raised:
        workspace.ethics.latest(version)
    assert raised.value.review == review.id  # type: ignore[attr-defined]
    with pytest.raises(IntegrityError):
        workspace.ethics.reviews(version)
    report = workspace.compliance.check(version, [{"check": "ethics_review"}])
    [result] = report.results
    assert result.passed is False
    assert "changed after its sign-off" in result.detail


def test_the_compliance_check_passes_on_an_approving_latest_review(
    workspace: Workspace, version: str
) -> None:
    policy = [{"check": "ethics_review"}]
    never = workspace.compliance.check(version, policy)
    assert (never.results[0].passed, never.risk_level) == (None, "high")
    assert "never reviewed" in never.results[0].detail
    workspace.ethics.submit(version, ANSWERS, decision="concerns", reviewer="ana")
    concerns = workspace.compliance.check(version, policy)
    assert concerns.results[0].passed is False
    assert concerns.results[0].detail.startswith("concerns by ana on ")
    review = workspace.ethics.submit(version, ANSWERS, decision="approved", reviewer="ben")
    approved = workspace.compliance.check(version, policy)
    assert (approved.results[0].passed, approved.risk_level) == (True, "low")
    assert approved.results[0].figures == {
        "review": review.id,
        "decision": "approved",
        "reviewer": "ben",
    }
    lowered = workspace.compliance.check(version, [{"check": "ethics_review", "severity": "low"}])
    assert lowered.results[0].severity == "low"
