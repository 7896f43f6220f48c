"""The options of an assessed patient, grouped as a clinician reads them.

Within the guideline's step first (the recommended option, then the alternatives and cautions
in rank order), then the options beyond the guideline's current step, then, apart, the options
not offered: not expected to lower BP, and contraindicated. Each option says its status in
words, the guideline's choice is named, its findings carry their citations, and each number
says what it is (the option's expected effect, or one clinic reading at 12 weeks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from models.assessment import Assessment, OptionAssessment, OptionStatus
from models.guideline.findings import Finding
from models.uncertainty_words import effect_words, p_target_words, reading_words
from service.panel_chart import Bar, Scale, render_chart
from service.panel_words import SEVERITY_WORDS, e, plain

STATUS_WORDS: Final[dict[OptionStatus, str]] = {
    OptionStatus.RECOMMENDED: "Recommended",
    OptionStatus.ALTERNATIVE: "Alternative within the guideline's step",
    OptionStatus.CAUTION: "Use with caution",
    OptionStatus.BEYOND_STEP: "Beyond the guideline's current step",
    OptionStatus.NOT_LOWERING: "Not offered: not expected to lower BP",
    OptionStatus.CONTRAINDICATED: "Contraindicated: not offered",
    OptionStatus.NOT_RANKED: "Not ranked",
}


@dataclass(frozen=True, slots=True)
class Group:
    key: str
    title: str
    intro: str
    member: Callable[[OptionAssessment], bool]


GROUPS: Final[tuple[Group, ...]] = (
    Group("in-step", "Within the guideline's step",
          "The recommended option first, then the alternatives, in order.",
          lambda o: o.rank is not None and o.in_step),
    Group("beyond-step", "Beyond the guideline's current step",
          "Outside what the guideline offers at this step; never first unless no option of "
          "the step is available.",
          lambda o: o.rank is not None and not o.in_step),
    Group("not-lowering", "Not offered: not expected to lower BP",
          "The model does not expect these to lower this patient's BP.",
          lambda o: o.status is OptionStatus.NOT_LOWERING),
    Group("contraindicated", "Not offered: contraindicated",
          "A safety rule rules these out for this patient.",
          lambda o: o.status is OptionStatus.CONTRAINDICATED),
)


def findings_list(fs: Iterable[Finding]) -> str:
    """Findings, each with its severity in words, its citation and its monitoring."""
    items = []
    for f in fs:
        mon = (f" <span class='monitor'>Monitor: {e(plain(f.monitoring).rstrip('.'))}.</span>"
               if f.monitoring else "")
        items.append(f"<li class='finding sev-{e(f.severity.label)}'><strong>"
                     f"{e(SEVERITY_WORDS[f.severity])}:</strong> {e(plain(f.message))} "
                     f"<cite>{e(f.citation)}</cite>{mon}</li>")
    return f"<ul class='findings'>{''.join(items)}</ul>" if items else ""


def driver_bars(o: OptionAssessment) -> list[Bar]:
    return [Bar(plain(d.words), d.contribution) for d in o.drivers]


def _numbers(o: OptionAssessment, a: Assessment) -> str:
    """The expected effect, the range of one reading and, where it means something, the
    chance of a reading below target: each says what it is."""
    lines = [effect_words(o.expected_effect, o.effect_interval, o.effect_coverage),
             reading_words(o.interval, o.interval_coverage)]
    if a.target is not None and o.p_target_shown:
        lines.append(p_target_words(o.p_target, a.target))
    items = "".join(f"<li>{e(t[0].upper() + t[1:])}</li>" for t in lines)
    return f"<ul class='numbers'>{items}</ul>"


def _option(o: OptionAssessment, a: Assessment, scale: Scale, baseline: str) -> str:
    rank = f"{o.rank}. " if o.rank is not None else ""
    choice = (" <span class='choice'>(the guideline's choice)</span>"
              if o.guideline_preferred else "")
    parts = [f"<li class='option' data-option='{e(o.option.id)}' data-status='{e(o.status)}'>"
             f"<h4>{e(rank)}{e(plain(a.label(o.option)))}</h4>"
             f"<p class='status status-{e(o.status)}'><strong>{e(STATUS_WORDS[o.status])}"
             f"</strong>{choice}</p>"]
    if o.status is not OptionStatus.CONTRAINDICATED:
        parts.append(_numbers(o, a))
    parts.append(findings_list(o.findings))
    if o.drivers:
        chart = render_chart(driver_bars(o), scale, "What gives this option more or less "
                             f"lowering than {plain(baseline)}")
        parts.append(f"<details><summary>Why this prediction (drivers)</summary>{chart}"
                     "</details>")
    parts.append("</li>")
    return "".join(parts)


def render_options(a: Assessment, scale: Scale, baseline: str) -> str:
    """The grouped options (h3 per group, h4 per option)."""
    out = []
    for g in GROUPS:
        members = sorted((o for o in a.options if g.member(o)),
                         key=lambda o: (o.rank is None, o.rank or 0))
        if not members:
            continue
        items = "".join(_option(o, a, scale, baseline) for o in members)
        out.append(f"<section class='group' data-group='{g.key}' aria-labelledby='g-{g.key}'>"
                   f"<h3 id='g-{g.key}'>{e(g.title)} ({len(members)})</h3>"
                   f"<p class='intro'>{e(g.intro)}</p><ul class='options'>{items}</ul>"
                   "</section>")
    return "".join(out)
