"""``weightbase ethics …``: the questionnaire, signing off a review, and a version's reviews."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from weightbase.cli._common import console, emit_json, open_workspace
from weightbase.cli.options import JsonOption, VersionRefArgument
from weightbase.cli.render import table

if TYPE_CHECKING:
    from weightbase.governance.ethics import EthicsReview

__all__ = ["ethics_app"]

ethics_app = typer.Typer(
    help="Ethics reviews: a reviewer's signed-off questionnaire on a model version.",
    no_args_is_help=True,
)

QuestionnaireOption = Annotated[
    Path | None,
    typer.Option(help="A YAML or JSON questionnaire (default: the built-in one)."),
]
_DECISIONS = {"approved": "green", "concerns": "yellow", "rejected": "red"}


def _show(review: EthicsReview) -> None:
    colour = _DECISIONS.get(review.decision, "white")
    console.print(
        f"{escape(review.ref)}: [bold {colour}]{review.decision}[/] by "
        f"{escape(review.reviewer)} on {review.reviewed_at:%Y-%m-%d %H:%M} "
        f"({escape(review.questionnaire)}, sign-off {review.signoff_digest[:12]})"
    )
    for question, answer in review.answers.items():
        console.print(f"  [bold]{escape(question)}[/]: {escape(answer)}")
    if review.notes:
        console.print(f"  notes: {escape(review.notes)}")


@ethics_app.command("questionnaire")
def questionnaire(questionnaire: QuestionnaireOption = None, json: JsonOption = False) -> None:
    """The questions a review answers: each id, whether it is required, and its text."""
    from weightbase.governance.ethics import load_questionnaire

    asked = load_questionnaire(questionnaire)
    if json:
        emit_json({**asked.to_dict(), "digest": asked.digest})
        return
    console.print(f"{escape(asked.name)} ({asked.digest[:12]})")
    shown = table(["id", "required", "question"])
    for question in asked.questions:
        shown.add_row(question.id, "yes" if question.required else "no", escape(question.text))
    console.print(shown)


@ethics_app.command("submit")
def submit(
    version: VersionRefArgument,
    answers: Annotated[
        Path, typer.Option(help="A YAML or JSON file mapping each question id to its answer.")
    ],
    decision: Annotated[str, typer.Option(help="approved, concerns or rejected.")],
    notes: Annotated[str | None, typer.Option(help="What the reviewer adds.")] = None,
    questionnaire: QuestionnaireOption = None,
    json: JsonOption = False,
) -> None:
    """Sign off a review of a version as the acting user; every required question answered."""
    from weightbase.governance.ethics import read_answers

    given = read_answers(answers)
    with open_workspace() as wb:
        review = wb.ethics.submit(
            version,
            given,
            decision=decision,  # type: ignore[arg-type]  # the service checks it
            notes=notes,
            questionnaire=questionnaire,
        )
    if json:
        emit_json(review.to_dict())
        return
    _show(review)


@ethics_app.command("show")
def show(
    version: VersionRefArgument,
    every: Annotated[bool, typer.Option("--all", help="Every review, oldest first.")] = False,
    json: JsonOption = False,
) -> None:
    """A version's latest ethics review with its answers, or every review with --all."""
    with open_workspace() as wb:
        if every:
            reviews = wb.ethics.reviews(version)
        else:
            latest = wb.ethics.latest(version)
            reviews = [] if latest is None else [latest]
    if json:
        if every:
            emit_json([review.to_dict() for review in reviews])
        else:
            emit_json(reviews[0].to_dict() if reviews else None)
        return
    if not reviews:
        console.print(f"{escape(version)} has no ethics review yet")
        return
    if not every:
        _show(reviews[0])
        return
    shown = table(["when", "reviewer", "decision", "questionnaire", "sign-off"])
    for review in reviews:
        shown.add_row(
            f"{review.reviewed_at:%Y-%m-%d %H:%M}",
            escape(review.reviewer),
            review.decision,
            escape(review.questionnaire),
            review.signoff_digest[:12],
        )
    console.print(shown)
