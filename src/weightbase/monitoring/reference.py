"""The reference a model version's drift is measured against, found through lineage.

By default it is the training split of the dataset version lineage says the model was
``trained_on``: an edge from the version itself, else from the run that produced it.
Nothing to configure when lineage exists; a clear error saying to pass a reference
when it does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from weightbase.errors import NotFound, ValidationError
from weightbase.monitoring.drift import Table, as_frame, drift_report

if TYPE_CHECKING:
    from weightbase.datasets.service import DatasetRegistry
    from weightbase.lineage import LineageService, Node
    from weightbase.monitoring.drift_records import DriftReport
    from weightbase.registry import ModelRegistry

__all__ = ["DriftAnalyzer", "TrainingReference"]

_DATASET = "dataset_version"
# Walk up from the model version: a direct trained_on edge, or produced_by a run that was.
_RELATIONS = ("trained_on", "produced_by")


@dataclass(frozen=True)
class TrainingReference:
    """The training split of a dataset version (``name@version``), as drift's reference."""

    dataset_ref: str
    inputs: Any
    targets: Any


class Workspace(Protocol):
    """What the analyzer reads of a workspace (embedded or remote)."""

    @property
    def models(self) -> ModelRegistry: ...

    @property
    def lineage(self) -> LineageService: ...

    @property
    def datasets(self) -> DatasetRegistry: ...


class DriftAnalyzer:
    """Drift of a model version's current inputs against its reference (by default: lineage's).

    ``wb.monitoring.drift(...)`` delegates here.
    """

    def __init__(self, workspace: Workspace) -> None:
        self._wb = workspace

    def reference_dataset(self, model_ref: Any) -> str:
        """``name@version`` of the dataset version ``model_ref`` was trained on.

        ``NotFound`` when lineage names none, ``ValidationError`` when it names several
        at the same distance (pass ``reference=`` then).
        """
        node = self._wb.models.node(model_ref)
        reached = self._wb.lineage.ancestors(node, relations=_RELATIONS)
        trained = [r for r in reached if r.node.kind == _DATASET and r.relation == "trained_on"]
        if not trained:
            raise NotFound(
                f"lineage records no dataset {model_ref} was trained_on; pass reference= "
                "(the data to compare against), or link the version to its dataset: "
                "wb.models.link(version, 'trained_on', wb.datasets.node(dataset))",
                model=str(model_ref),
            )
        nearest = [r.node for r in trained if r.distance == trained[0].distance]
        names = self._names(nearest)
        if len(names) > 1:
            raise ValidationError(
                f"{model_ref} was trained_on several datasets ({', '.join(sorted(names))}); "
                "pass reference= to say which to compare against",
                datasets=sorted(names),
            )
        return names[0]

    def _names(self, nodes: list[Node]) -> list[str]:
        described = self._wb.datasets.describe(nodes)
        missing = [str(n) for n in nodes if n not in described]
        if missing:
            raise NotFound(
                f"lineage points at dataset versions that do not exist ({', '.join(missing)}); "
                "pass reference=",
                nodes=missing,
            )
        return sorted(set(described.values()))

    def training_reference(self, model_ref: Any) -> TrainingReference:
        """The training split (inputs and targets) of the dataset ``model_ref`` was trained on."""
        dataset = self.reference_dataset(model_ref)
        try:
            inputs, targets = self._wb.datasets.arrays(dataset, "train")
        except NotFound as exc:
            raise NotFound(
                f"{dataset} has no training split to use as the reference; pass reference=",
                dataset=dataset,
            ) from exc
        return TrainingReference(dataset, inputs, targets)

    def report(
        self, model_ref: Any, current: Table, reference: Table | None = None, **options: Any
    ) -> DriftReport:
        """:func:`~weightbase.monitoring.drift.drift_report` of ``current`` against ``reference``.

        Without ``reference``, the training split of the version's ``trained_on``
        dataset. Then, when ``prediction=`` names a column ``current`` has and the
        training inputs do not, the training targets stand in for the reference's
        predictions (label shift against what the model learned from).
        """
        if reference is None:
            found = self.training_reference(model_ref)
            reference = self._with_targets(found, current, options.get("prediction"))
        else:
            self._wb.models.version(model_ref)  # the version must exist either way
        return drift_report(reference, current, **options)

    @staticmethod
    def _with_targets(found: TrainingReference, current: Table, prediction: str | None) -> Table:
        inputs = as_frame(found.inputs, "reference")
        if prediction is None or found.targets is None or prediction in inputs.columns:
            return inputs
        if prediction not in as_frame(current, "current").columns:
            return inputs
        targets = getattr(found.targets, "to_numpy", lambda: found.targets)()
        if len(targets) != len(inputs):
            return inputs
        return inputs.assign(**{prediction: targets})
