"""The ``weightbase`` command line: one Typer group per domain, thin over the services."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from weightbase.cli.abtests import ab_app
from weightbase.cli.approvals import approvals_app
from weightbase.cli.compliance import compliance_app
from weightbase.cli.datasets import datasets_app
from weightbase.cli.demo import demo
from weightbase.cli.deploy import deploy_app
from weightbase.cli.deploy_manifests import manifests
from weightbase.cli.deploy_serve import deploy_metrics, deploy_serve
from weightbase.cli.ethics import ethics_app
from weightbase.cli.exit_codes import ExitCode, ExitCodeGroup
from weightbase.cli.explain import explain_app
from weightbase.cli.fusion import reactors_app
from weightbase.cli.lineage import lineage
from weightbase.cli.models import models_app
from weightbase.cli.monitoring import monitor_app
from weightbase.cli.runs import runs_app
from weightbase.cli.scan import scan
from weightbase.cli.serve import serve
from weightbase.cli.server import server
from weightbase.cli.store import store_app
from weightbase.cli.users import tokens_app, users_app
from weightbase.cli.webhooks import webhooks_app

__all__ = ["ExitCode", "app", "main"]

app = typer.Typer(
    name="weightbase",
    cls=ExitCodeGroup,
    help="Store, version and ship neural network weights. Run `weightbase demo` for a tour.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _settings(
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="WEIGHTBASE_URL",
            help="Work on the weightbase server at this URL (http://host:8080) instead of "
            "WEIGHTBASE_HOME; the token comes from WEIGHTBASE_TOKEN.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Store, version and ship neural network weights. Run `weightbase demo` for a tour."""
    if url:
        # weightbase.open() reads it: every command below works on that server
        os.environ["WEIGHTBASE_URL"] = url


app.add_typer(store_app, name="store")
app.add_typer(models_app, name="models")
app.add_typer(runs_app, name="runs")
app.add_typer(datasets_app, name="datasets")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(approvals_app, name="approvals")
app.add_typer(compliance_app, name="compliance")
app.add_typer(ethics_app, name="ethics")
app.add_typer(explain_app, name="explain")
app.add_typer(deploy_app, name="deploy")
deploy_app.command(name="manifests")(manifests)
deploy_app.command(name="serve")(deploy_serve)
deploy_app.command(name="metrics")(deploy_metrics)
app.add_typer(ab_app, name="ab")
app.add_typer(reactors_app, name="reactors")
app.add_typer(monitor_app, name="monitor")
app.command(name="demo")(demo)
app.command(name="lineage")(lineage)
app.command(name="scan")(scan)
app.command(name="server")(server)
app.command(name="serve")(serve)


def main() -> None:
    """Entry point of the ``weightbase`` script; its exit status is an ``ExitCode``."""
    app()
