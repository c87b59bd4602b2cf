"""Lineage: where every model version, dataset and deployment came from, as a graph.

An edge ``(source) <relation> (target)`` reads as a sentence with the source as
its subject: ``(model_version:7) fine_tuned_from (model_version:3)``. The
source is always the downstream end, made from, by or on the target, so

- ``ancestors(node)`` follows edges source → target: where ``node`` came from;
- ``descendants(node)`` follows them target → source: what came from ``node``.

Known relations, each as ``(source) relation (target)``:

==================  ==========================================================
``derived_from``     (model_version) derived_from (model_version)
``fine_tuned_from``  (model_version) fine_tuned_from (model_version)
``trained_on``       (run or model_version) trained_on (dataset_version)
``produced_by``      (model_version) produced_by (run)
``evaluated_on``     (model_version) evaluated_on (dataset_version)
``deployed_as``      (deployment) deployed_as (model_version): the deployment
                     serves that version, so deployments are its descendants
==================  ==========================================================

``LineageService.register_relation`` adds more. Node kinds are free-form
snake_case names (``model_version``, ``dataset_version``, ``run``,
``deployment``…) and ids are strings, so an edge may name things outside the
catalog. Walks are single recursive SQL queries, cycle-safe, on SQLite and
PostgreSQL alike (see :mod:`weightbase.lineage.traverse`).

``lineage_of(wb, "dataset:iris@1.0.0")`` finds a node by what a person knows
of it (``model:NAME@VERSION``, ``dataset:NAME@VERSION``, ``run:ID``,
``checkpoint:REF``, or a graph node ``KIND:ID``; see
:mod:`weightbase.lineage.address`) and returns its :class:`LineageGraph`, the
walks both ways, named; :func:`to_dot` draws one for Graphviz. A training
checkpoint's node is ``checkpoint:<its store ref>``
(``checkpoint:checkpoints/runs/12/300``).
"""

from weightbase.lineage.address import NodeAddress, lineage_of, parse_address
from weightbase.lineage.graph import LineageGraph, to_dot
from weightbase.lineage.records import LineageEdge, Node, ReachedNode
from weightbase.lineage.service import RELATIONS, LineageService

__all__ = [
    "RELATIONS",
    "LineageEdge",
    "LineageGraph",
    "LineageService",
    "Node",
    "NodeAddress",
    "ReachedNode",
    "lineage_of",
    "parse_address",
    "to_dot",
]
