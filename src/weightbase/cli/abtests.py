"""``weightbase ab …``: A/B tests between model versions (``wb.abtests``).

``ab create NAME -v ranker@1.0.0 -v ranker@1.1.0 --metric click`` starts one (the first
variant is control); ``ab results`` shows each variant, the effects, the sample-ratio check,
the power plan and the recommendation; ``ab promote`` moves production to the winner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from weightbase.cli._common import console, emit_json, open_workspace
from weightbase.cli.options import JsonOption, ReasonOption
from weightbase.cli.render import table
from weightbase.errors import ValidationError
from weightbase.serving.abtest_records import ABMetric

if TYPE_CHECKING:
    from weightbase.serving.abtest_records import ABTest, ABTestResults

__all__ = ["ab_app"]

ab_app = typer.Typer(
    help="A/B tests: model versions compared on live traffic, analysed, promoted.",
    no_args_is_help=True,
)

TestArgument = Annotated[str, typer.Argument(help="The test's id, or the name of a running test.")]


def _guardrail(text: str) -> ABMetric:
    """``NAME[:KIND[:lower]]``: a continuous metric where higher is better unless said."""
    parts = text.split(":")
    if not 1 <= len(parts) <= 3 or (len(parts) == 3 and parts[2] not in ("lower", "higher")):
        raise ValidationError(
            f"a guardrail is NAME[:binary|continuous[:lower|higher]], not {text!r}",
            field="guardrail",
        )
    kind = parts[1] if len(parts) > 1 else "continuous"
    return ABMetric(parts[0], kind, len(parts) < 3 or parts[2] == "higher")  # type: ignore[arg-type]


def _show(found: ABTest) -> None:
    shares = sum(found.weights)
    console.print(
        f"[bold]{escape(found.name)}[/] ({found.id}): {found.status}, started "
        f"{found.started:%Y-%m-%d %H:%M:%S}",
        highlight=False,
    )
    direction = "higher" if found.metric.higher_is_better else "lower"
    console.print(
        f"  metric {escape(found.metric.name)} ({found.metric.kind}, {direction} is better)"
        + (f", planned {found.planned_units} units" if found.planned_units else ""),
        highlight=False,
    )
    for index, variant in enumerate(found.variants):
        role = "control" if index == 0 else "treatment"
        console.print(
            f"  {role} {escape(variant.name)} = {escape(variant.ref)}: "
            f"{found.weights[index] / shares:.0%} of traffic",
            highlight=False,
        )
    for guardrail in found.guardrails:
        console.print(f"  guardrail {escape(guardrail.name)} ({guardrail.kind})", highlight=False)
    if found.decision:
        winner = f", winner {escape(found.winner)}" if found.winner else ""
        console.print(f"  decision {escape(found.decision)}{winner}", highlight=False)


@ab_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name no running test has.")],
    variant: Annotated[
        list[str],
        typer.Option(
            "--variant", "-v", help="NAME@VERSION or a deployment id; repeat, control first."
        ),
    ],
    weight: Annotated[
        list[float] | None,
        typer.Option(
            "--weight", "-w", help="Traffic weight per variant, in order (default: equal)."
        ),
    ] = None,
    metric: Annotated[str, typer.Option(help="The primary metric.")] = "conversion",
    kind: Annotated[str, typer.Option(help="binary (0/1) or continuous.")] = "binary",
    lower_is_better: Annotated[
        bool, typer.Option("--lower-is-better", help="A lower metric is better.")
    ] = False,
    guardrail: Annotated[
        list[str] | None,
        typer.Option(help="NAME[:binary|continuous[:lower|higher]] that must not get worse."),
    ] = None,
    planned_units: Annotated[
        int | None, typer.Option(help="The planned sample size, for the power plan.")
    ] = None,
    salt: Annotated[str | None, typer.Option(help="The assignment salt (default: the id).")] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="What the test is for.")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Start an A/B test between model versions (or deployments)."""
    with open_workspace() as wb:
        created = wb.abtests.create(
            name,
            variants=variant,
            weights=weight or None,
            metric=metric,
            kind=kind,
            higher_is_better=not lower_is_better,
            guardrails=[_guardrail(item) for item in guardrail or ()],
            planned_units=planned_units,
            salt=salt,
            description=description,
        )
    if json:
        emit_json(created.to_dict())
        return
    _show(created)


@ab_app.command("list")
def list_tests(
    status: Annotated[str | None, typer.Option(help="Only running or stopped tests.")] = None,
    json: JsonOption = False,
) -> None:
    """A/B tests, newest first."""
    with open_workspace() as wb:
        found = wb.abtests.list(status=status)
    if json:
        emit_json([item.to_dict() for item in found])
        return
    shown = table(["name", "id", "status", "variants", "metric", "started", "decision"])
    for item in found:
        shown.add_row(
            escape(item.name),
            item.id,
            item.status,
            escape(", ".join(variant.name for variant in item.variants)),
            escape(item.metric.name),
            item.started.strftime("%Y-%m-%d %H:%M:%S"),
            escape(item.decision or ""),
        )
    console.print(shown)


@ab_app.command("show")
def show(test: TestArgument, json: JsonOption = False) -> None:
    """A test: its variants and weights, metrics, plan and decision."""
    with open_workspace() as wb:
        found = wb.abtests.get(test)
    if json:
        emit_json(found.to_dict())
        return
    _show(found)


def _print_results(found: ABTestResults) -> None:
    results = found.results
    shown = table(["variant", "units", "mean", "variance"], title=escape(found.name))
    for stats in results.variants:
        shown.add_row(
            escape(stats.name), str(stats.count), f"{stats.mean:.6g}", f"{stats.variance:.6g}"
        )
    console.print(shown)
    level = 1 - results.settings.alpha
    effects = table(
        ["variant", "effect", f"{level:.0%} interval", "p", "always-valid p", "P(beats control)"]
    )
    for comparison, p_value in zip(results.comparisons, found.always_valid_p, strict=True):
        effect = comparison.relative or comparison.absolute
        unit = "%" if comparison.relative is not None else ""
        scale = 100 if unit else 1
        effects.add_row(
            escape(comparison.variant),
            f"{effect.estimate * scale:+.3g}{unit}",
            f"[{effect.ci_low * scale:+.3g}{unit}, {effect.ci_high * scale:+.3g}{unit}]",
            "" if effect.p_value is None else f"{effect.p_value:.3g}",
            f"{p_value:.3g}",
            f"{comparison.bayesian.chance_to_beat_control:.1%}",
        )
    console.print(effects)
    ratio = results.sample_ratio
    mark = "[red]mismatch[/]" if ratio.mismatch else "ok"
    console.print(f"sample ratio: {mark} (χ² p = {ratio.p_value:.3g})", highlight=False)
    if results.power is not None:
        mdes = ", ".join(
            "n/a" if mde is None else f"{mde:.3g}" for mde in results.power.mde_relative
        )
        console.print(
            f"power {results.power.power:.0%} at {results.power.planned_units} units: "
            f"smallest detectable relative effect {mdes}",
            highlight=False,
        )
    console.print(escape(found.recommendation), highlight=False)


@ab_app.command("results")
def results(test: TestArgument, json: JsonOption = False) -> None:
    """Per-variant statistics, effects, the sample-ratio check, power and what to do."""
    with open_workspace() as wb:
        found = wb.abtests.results(test)
    if json:
        emit_json(found.to_dict())
        return
    _print_results(found)


@ab_app.command("stop")
def stop(
    test: TestArgument,
    decision: Annotated[str, typer.Option(help="What was decided (ship, keep-control, …).")],
    winner: Annotated[str | None, typer.Option(help="The winning variant, if one.")] = None,
    reason: ReasonOption = None,
    json: JsonOption = False,
) -> None:
    """End a running test with a recorded decision."""
    with open_workspace() as wb:
        stopped = wb.abtests.stop(test, decision=decision, reason=reason, winner=winner)
    if json:
        emit_json(stopped.to_dict())
        return
    _show(stopped)


@ab_app.command("promote")
def promote(
    test: TestArgument,
    variant: Annotated[
        str | None, typer.Option(help="The variant to promote (default: the results' winner).")
    ] = None,
    reason: ReasonOption = None,
    json: JsonOption = False,
) -> None:
    """Move the production alias to the winner (production may need an approved request)."""
    with open_workspace() as wb:
        promoted = wb.abtests.promote(test, variant, reason=reason)
    if json:
        emit_json(promoted.to_dict())
        return
    _show(promoted)
