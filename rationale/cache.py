"""A bounded cache with expiry (least recently used out first), for rationales by facts hash.

The same assessment (the same facts: a clinician reopening the record, the panel after its
card, a resent hook) is not put to the LLM again while its rationale is fresh. Bounded, so a
busy service keeps at most ``max_items`` rationales; each expires after ``ttl_s``. One event
loop uses it: no lock.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlLru(Generic[V]):
    """``get``/``put`` by string key; at most ``max_items``, each for ``ttl_s`` seconds."""

    def __init__(self, max_items: int = 1024, ttl_s: float = 1800.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._max = max_items
        self._ttl_s = ttl_s
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= self._clock():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: str, value: V) -> None:
        self._items[key] = (self._clock() + self._ttl_s, value)
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
