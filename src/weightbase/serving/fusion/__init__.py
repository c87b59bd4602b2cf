"""Fusion reactors: ensembles, cascades and fan-outs of served models (``wb.reactors``).

The records are in ``records``, the interaction graph in ``graph``, the ways answers
combine in ``strategies`` and ``stacking``, the service in ``service`` and the served
reactor in ``runnable`` (``weightbase serve reactor:NAME``).
"""

from __future__ import annotations

from weightbase.serving.fusion.records import (
    OUTPUT_KINDS,
    RELATIONS,
    ROLES,
    STRATEGIES,
    Edge,
    FusionOperation,
    Member,
    MemberAnswer,
    Reactor,
    Stacker,
)
from weightbase.serving.fusion.service import Reactors

__all__ = [
    "OUTPUT_KINDS",
    "RELATIONS",
    "ROLES",
    "STRATEGIES",
    "Edge",
    "FusionOperation",
    "Member",
    "MemberAnswer",
    "Reactor",
    "Reactors",
    "Stacker",
]
