"""The demo's A/B test and drift part: a weaker challenger of the digits model against it on
simulated traffic, then a drift report of the test images against the training split, as
they come and with every pixel brightened.

The server runs ``abtest:NAME`` in this process on a free loopback port; each simulated
user sends a test image with its id in ``X-Weightbase-Unit``, the server answers with the
variant the user is assigned to, and the user "accepts" the answer when it is the right
digit: that acceptance is the test's binary metric, sent back as outcomes. The drift
reference is found through lineage: the training split of the dataset the model was
trained on. Everything is seeded: a rerun sends the same traffic and reads the same drift.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.markup import escape
from rich.table import Table

from weightbase.cli._common import console
from weightbase.cli.demo_serving import loopback_server, missing_extra

if TYPE_CHECKING:
    from weightbase.workspace import Workspace

__all__ = ["ab_test_and_drift", "render_abtest"]

TEST = "digits-challenger"
#: Simulated users, one request each (every test image is sent several times).
USERS = 1200
#: The challenger: the same network, narrower and trained for three epochs only.
CHALLENGER_ARGS = {"inputs": 64, "hidden": 12, "outputs": 10}
EPOCHS = 3
#: Pixels (0 to 16) brightened by this much for the drifted window.
BRIGHTER = 4.0


def ab_test_and_drift(
    wb: Workspace, *, digits: str, dataset: str, show_progress: bool = True
) -> dict[str, Any]:
    """An A/B test of ``digits`` against a challenger on simulated users, its results and
    recommendation; then drift of the test split, unchanged and brightened."""
    missing = missing_extra()
    if missing is not None:
        return {"skipped": missing}
    from sklearn.datasets import load_digits

    from weightbase.monitoring.reference import DriftAnalyzer
    from weightbase.serving.server_options import ServeOptions

    loaded = load_digits()
    test_rows = np.asarray(wb.datasets.splits(dataset).test)
    pixels = loaded.data.astype(np.float32)
    challenger = _challenger(wb, digits, dataset, pixels / 16, loaded.target)
    for running in wb.abtests.list(status="running"):
        if running.name == TEST:  # left running by an interrupted earlier demo
            wb.abtests.stop(running.id, decision="abandoned", reason="a new demo run")
    test = wb.abtests.create(
        TEST,
        variants=[digits, challenger],
        metric="accepted",
        kind="binary",
        planned_units=USERS,
        salt=f"{TEST}-demo",  # a rerun assigns each simulated user as before
        description="the trained digits MLP against a narrower, shorter-trained challenger",
    )
    answered: Counter[str] = Counter()
    outcomes = []
    options = ServeOptions(cache_bytes=0, metrics_interval_s=0)
    with loopback_server(wb, [f"abtest:{TEST}"], options) as client:
        for user in range(USERS):
            row = int(test_rows[user % len(test_rows)])
            unit = f"user-{user}"
            tensor = {"name": "input", "shape": [1, 64], "datatype": "FP32"}
            tensor["data"] = (pixels[row] / 16).tolist()
            response = client.post(
                f"/v2/models/{TEST}/infer",
                json={"inputs": [tensor]},
                headers={"X-Weightbase-Unit": unit},
            )
            response.raise_for_status()
            answered[response.headers["X-Weightbase-Variant"]] += 1
            guess = int(np.argmax(response.json()["outputs"][0]["data"]))
            outcomes.append((unit, "accepted", float(guess == loaded.target[row])))
    wb.abtests.record(test.id, outcomes)
    results = wb.abtests.results(test.id)
    comparison = results.results.comparisons[0]
    stopped = wb.abtests.stop(
        test.id,
        decision=results.recommendation[:64],
        winner=results.winner,
        reason="the demo's simulated traffic is done",
    )
    analyzer = DriftAnalyzer(wb)
    as_sent = analyzer.report(digits, pixels[test_rows])
    brighter = analyzer.report(digits, np.clip(pixels[test_rows] + BRIGHTER, 0, 16))
    return {
        "test": {"id": test.id, "name": TEST, "status": stopped.status},
        "variants": [
            {
                "variant": stats.name,
                "answered": answered[stats.name],
                "units": stats.count,
                "accepted": round(stats.mean, 4),
            }
            for stats in results.results.variants
        ],
        "effect": {
            "absolute": round(comparison.absolute.estimate, 4),
            "ci": [round(comparison.absolute.ci_low, 4), round(comparison.absolute.ci_high, 4)],
            "p_value": comparison.absolute.p_value,
            "always_valid_p": results.always_valid_p[0],
            "chance_to_beat_control": round(comparison.bayesian.chance_to_beat_control, 4),
            "sample_ratio_p": round(results.results.sample_ratio.p_value, 4),
        },
        "winner": results.winner,
        "recommendation": results.recommendation,
        "drift": {"as_sent": _drift(as_sent), "brighter": _drift(brighter)},
    }


def _challenger(
    wb: Workspace, digits: str, dataset: str, x_all: np.ndarray[Any, Any], y_all: Any
) -> str:
    """The next version of ``digits``'s model: narrower, trained three epochs (seeded)."""
    import torch

    from weightbase.sample_models import DIGITS_MLP, DigitsMLP

    train = np.asarray(wb.datasets.splits(dataset).train)
    x = torch.from_numpy(x_all[train])
    y = torch.from_numpy(np.asarray(y_all)[train])
    torch.manual_seed(1)
    model = DigitsMLP(**CHALLENGER_ARGS)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(EPOCHS):
        for start in range(0, len(x), 64):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                model(x[start : start + 64]), y[start : start + 64]
            )
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    name = digits.partition("@")[0]
    pushed = wb.models.push(
        name,
        model.eval(),
        entry_point=DIGITS_MLP,
        init_args=CHALLENGER_ARGS,
        description="challenger: 12 hidden units, three epochs",
    )
    return f"{pushed.model}@{pushed.version}"


def _drift(report: Any) -> dict[str, Any]:
    # the clearest first: the smallest p-value, or the largest distance
    worst = sorted(
        (column for column in report.columns if column.drifted),
        key=lambda column: -column.statistic if column.p_value is None else column.p_value,
    )
    return {
        "features": len(report.columns),
        "drifted": len(report.drifted_columns),
        "share": round(report.drifted_share, 3),
        "dataset_drift": report.dataset_drift,
        "examples": [{"column": c.column, "method": c.method, "score": c.score} for c in worst[:3]],
    }


def render_abtest(result: dict[str, Any]) -> None:
    """Print the A/B test and drift part for people."""
    console.rule("[bold]A/B test and drift")
    if "skipped" in result:
        console.print(f"[yellow]skipped[/]: {escape(result['skipped'])}\n")
        return
    table = Table(title=f"A/B test {result['test']['name']} ({USERS} simulated users)")
    for column in ("variant", "answered by the server", "units with outcomes", "accepted"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for variant in result["variants"]:
        table.add_row(
            escape(variant["variant"]),
            str(variant["answered"]),
            str(variant["units"]),
            f"{variant['accepted']:.3f}",
        )
    console.print(table)
    effect = result["effect"]
    console.print(
        f"challenger minus control: {effect['absolute']:+.3f} "
        f"(95% CI {effect['ci'][0]:+.3f} to {effect['ci'][1]:+.3f}), "
        f"always-valid p {effect['always_valid_p']:.2g}, "
        f"chance to beat control {effect['chance_to_beat_control']:.1%}, "
        f"sample-ratio check p {effect['sample_ratio_p']:.2f}"
    )
    console.print(f"recommendation: [bold]{escape(result['recommendation'])}[/]")
    for label, key in (
        ("test images as sent", "as_sent"),
        (f"brightened by {BRIGHTER:g}", "brighter"),
    ):
        drift = result["drift"][key]
        verdict = "[red]dataset drift[/]" if drift["dataset_drift"] else "[green]no drift[/]"
        examples = ", ".join(
            f"pixel {e['column']} ({e['method']} {e['score']:.3g})" for e in drift["examples"]
        )
        console.print(
            f"drift against the training split, {label}: {drift['drifted']} of "
            f"{drift['features']} pixels drifted ({drift['share']:.0%}): {verdict}"
            + (f"; e.g. {examples}" if examples else "")
        )
    console.print()
