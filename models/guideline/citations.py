"""Machine-readable citations for guideline rules.

Citations are immutable, so each distinct one is made once and shared (the rules cite on every
finding they make).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True, slots=True)
class Citation:
    """A guideline recommendation: guideline, version and recommendation number."""

    guideline: str
    version: str
    recommendation: str

    def __str__(self) -> str:
        return f"{self.guideline} {self.recommendation}"


@cache
def nice(rec: str) -> Citation:
    """NICE NG136 (2019, updated 2023)."""
    return Citation("NICE NG136", "2019 (updated 2023)", rec)


@cache
def nice_ng203(rec: str) -> Citation:
    """NICE NG203 chronic kidney disease (2021)."""
    return Citation("NICE NG203", "2021", rec)


@cache
def esc(rec: str) -> Citation:
    """ESC 2024 guidelines for elevated BP and hypertension (McEvoy et al. Eur Heart J 2024)."""
    return Citation("ESC 2024", "2024", rec)


@cache
def smpc(drug: str, section: str = "4.3 contraindications") -> Citation:
    """UK Summary of Product Characteristics (research/clinical.md section 2)."""
    return Citation(f"SmPC {drug}", "UK (MHRA)", section)


@cache
def mhra(topic: str) -> Citation:
    return Citation("MHRA Drug Safety Update", "UK", topic)


@cache
def bnf(topic: str) -> Citation:
    return Citation("BNF", "UK", topic)


@cache
def nice_ng106(rec: str) -> Citation:
    """NICE NG106 chronic heart failure (2018, updated September 2025)."""
    return Citation("NICE NG106", "2018 (updated 2025)", rec)


@cache
def nice_ng133(rec: str) -> Citation:
    """NICE NG133 hypertension in pregnancy (2019)."""
    return Citation("NICE NG133", "2019 (updated 2023)", rec)


@cache
def ukka(topic: str) -> Citation:
    """UK Kidney Association clinical practice guideline (cited by its title and section)."""
    return Citation("UK Kidney Association", "2023", topic)


@cache
def policy(topic: str) -> Citation:
    """A rule of this project where no guideline gives one (named as such, never passed off
    as a guideline's recommendation)."""
    return Citation("Hypermarker clinical-safety policy", "2026", topic)
