"""The interaction graph of a reactor: edges between members checked to name members and
to hold no cycle, and the order the members run in.

``graphlib.TopologicalSorter`` does the ordering; among members ready at the same time the
lower priority runs first, then the earlier given.
"""

from __future__ import annotations

from collections.abc import Sequence
from graphlib import CycleError, TopologicalSorter

from weightbase.errors import ValidationError
from weightbase.serving.fusion.records import Edge, Member

__all__ = ["check_graph", "execution_order"]


def check_graph(members: Sequence[Member], edges: Sequence[Edge]) -> None:
    """Refuse edges that name no member, repeat, or close a cycle (``ValidationError``)."""
    refs = {member.ref for member in members}
    seen: set[tuple[str, str]] = set()
    for edge in edges:
        for end in (edge.source, edge.target):
            if end not in refs:
                raise ValidationError(
                    f"edge {edge.source} → {edge.target}: {end} is not a member", field="edges"
                )
        if (edge.source, edge.target) in seen:
            raise ValidationError(
                f"edge {edge.source} → {edge.target} is given twice", field="edges"
            )
        seen.add((edge.source, edge.target))
    execution_order(members, edges)


def execution_order(members: Sequence[Member], edges: Sequence[Edge]) -> list[Member]:
    """The members in the order they run: every edge's source before its target; among
    those ready together, lower priority first, then the order they were given in."""
    rank = {member.ref: (member.priority, index) for index, member in enumerate(members)}
    by_ref = {member.ref: member for member in members}
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for member in members:
        sorter.add(member.ref)
    for edge in edges:
        sorter.add(edge.target, edge.source)
    try:
        sorter.prepare()
    except CycleError as exc:
        cycle = " → ".join(exc.args[1]) if len(exc.args) > 1 else "?"
        raise ValidationError(
            f"the interaction graph has a cycle: {cycle}", field="edges"
        ) from None
    order: list[Member] = []
    ready: set[str] = set()
    while sorter.is_active():
        ready.update(sorter.get_ready())
        # one at a time, so a member made ready by the one before competes by priority
        first = min(ready, key=rank.__getitem__)
        ready.remove(first)
        order.append(by_ref[first])
        sorter.done(first)
    return order
