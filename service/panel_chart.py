"""The drivers chart: horizontal bars on ONE scale for the whole page, with an mmHg axis.

Every chart of a page is drawn against the same :class:`Scale` (the largest contribution
shown anywhere on the page, rounded up to a round number), so a bar twice as long is twice
the contribution wherever it is; the issue's finding was bars scaled per row, with no axis.
Direction never relies on colour: each row says it in words and with its sign, bars that lower
BP point left of the zero line and are solid, the others point right and are hatched. Pure
HTML and CSS (no script, no font), readable at 400 px.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from service.panel_words import e, mmhg, signed


@dataclass(frozen=True, slots=True)
class Bar:
    """One row: what it is, in words, and its contribution in mmHg."""

    words: str
    contribution: float


@dataclass(frozen=True, slots=True)
class Scale:
    """Half-width of the axis in mmHg: a bar of ``limit`` reaches the chart's edge."""

    limit: float

    @classmethod
    def covering(cls, bars: Iterable[Bar]) -> Scale:
        biggest = max((abs(b.contribution) for b in bars), default=0.0)
        return cls(_round_up(biggest))

    def percent(self, x: float) -> float:
        """The bar length of ``x`` as a percentage of the chart's half-width."""
        return round(50.0 * min(abs(x), self.limit) / self.limit, 2)

    def ticks(self) -> tuple[float, ...]:
        half = self.limit / 2
        return (-self.limit, -half, 0.0, half, self.limit)


def _round_up(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above ``x`` (1 at least)."""
    if x <= 1.0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(x))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= x - 1e-9:
            return step * power
    return 10.0 * power  # pragma: no cover - the loop ends at 10


def _row(b: Bar, scale: Scale, lower: str, higher: str) -> str:
    pct = scale.percent(b.contribution)
    lowers = b.contribution < 0
    side = f"right:50%;width:{pct}%" if lowers else f"left:50%;width:{pct}%"
    shape = "bar-lower" if lowers else "bar-higher"
    words = lower if lowers else higher
    return (f"<li class='driver' data-contribution='{b.contribution:.2f}'>"
            f"<span class='driver-words'>{e(b.words)}</span> "
            f"<span class='driver-value'>{e(mmhg(b.contribution))}: {e(words)}</span>"
            f"<span class='track' aria-hidden='true'><span class='bar {shape}' "
            f"style='{side}' data-percent='{pct}'></span></span></li>")


def _tick(t: float) -> str:
    return "0" if t == 0 else signed(t, 0 if t == int(t) else 1)


def _axis(scale: Scale, left: str, right: str) -> str:
    ticks = scale.ticks()
    labels = "".join(
        f"<span class='tick tick-{i}' style='left:{50 + 50 * t / scale.limit:g}%'>"
        f"{e(_tick(t))}</span>" for i, t in enumerate(ticks))
    return (f"<div class='axis' aria-hidden='true'>{labels}</div>"
            f"<p class='axis-title' aria-hidden='true'>mmHg: \u2190 {e(left)} \u00b7 "
            f"{e(right)} \u2192</p>")


def render_chart(bars: Iterable[Bar], scale: Scale, caption: str, *,
                 lower: str = "more lowering", higher: str = "less lowering") -> str:
    """A figure: caption, one row per bar (text first; the bar is decoration), the axis.
    ``lower``/``higher``: what a negative/positive contribution means, in words."""
    rows = "".join(_row(b, scale, lower, higher) for b in bars)
    if not rows:
        return ""
    return (f"<figure class='chart' data-scale='{scale.limit:g}'>"
            f"<figcaption>{e(caption)}</figcaption><ul class='drivers'>{rows}</ul>"
            f"{_axis(scale, lower, higher)}</figure>")
