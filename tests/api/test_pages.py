"""Pages of short listings held whole: by id and by position, every item once, in order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from weightbase.api.common import page_by_id, page_by_position


@dataclass
class _Item:
    id: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id}


def _walk(pager: Any, items: list[_Item], limit: int) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor: int | None = None
    while True:
        found = pager(items, limit, cursor)
        seen += found.items
        if found.next is None:
            return seen
        cursor = int(found.next)


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 100])
@pytest.mark.parametrize("pager", [page_by_id, page_by_position])
def test_every_item_once_in_order(pager: Any, limit: int) -> None:
    items = [_Item(i) for i in (3, 5, 8, 13, 21, 34, 55)]
    assert _walk(pager, items, limit) == [item.to_dict() for item in items]
    assert pager([], limit, None).next is None
