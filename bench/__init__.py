"""Benchmarks: each module exposes ``run() -> list[Row]``; ``python -m bench`` prints one table.

Every figure is a ratio against a floor measured in the same run (these machines are noisy), so
the ratio means something even when the absolute times do not.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    benchmark: str
    measured: str
    floor: str
    ratio: float | None
    goal: str
    notes: str = ""

    @property
    def cells(self) -> list[str]:
        ratio = "" if self.ratio is None else f"{self.ratio:.2f}"
        return [self.benchmark, self.measured, self.floor, ratio, self.goal, self.notes]


COLUMNS = ["benchmark", "measured", "floor", "ratio", "goal", "notes"]


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row.cells) + " |" for row in rows]
    return "\n".join(lines) + "\n"
