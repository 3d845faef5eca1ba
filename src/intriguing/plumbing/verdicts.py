"""When a measured figure reproduces the paper's: the verdict rules, as data.

Why: the experiments judge their claims and the scorecard judges every table cell by the same
rules, printed on the scorecard page exactly as they are applied. A small figure is judged
relative to its size as well: a 2% transfer rate measured at 6% is three times the paper's,
however few percentage points apart (an absolute tolerance alone would pass it).

References: Szegedy et al. 2014, arXiv:1312.6199, Tables 1-5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import checks

REPRODUCED = "reproduced"
DIFFERS = "differs"
UNAVAILABLE = "not available here"


@dataclass(frozen=True)
class Tolerance:
    """When a measured figure counts as reproducing the paper's.

    A figure passes when every bound that is set holds: ``|ours - paper| <= absolute``, and
    ``|ours - paper| <= relative * |paper|`` unless the difference is within ``floor`` (so a
    paper figure near zero is not held to an impossible relative precision). An ``at_most``
    rule ("below 1.2%") passes when ``ours <= paper``.

    Attributes:
        label: what kind of figure this is, as the page names it.
        absolute: the largest absolute difference that passes (None: no absolute bound).
        relative: the largest difference relative to the paper's figure (None: none).
        floor: differences up to this pass the relative bound whatever the paper's figure.
        at_most: the paper states an upper bound, not a value.
        why: one sentence on why this tolerance, printed on the page.
    """

    label: str
    absolute: float | None = None
    relative: float | None = None
    floor: float = 0.0
    at_most: bool = False
    why: str = ""

    def passes(self, ours: float, paper_value: float) -> bool:
        """Whether ``ours`` reproduces ``paper_value`` under this rule."""
        if self.at_most:
            return ours <= paper_value
        diff = abs(ours - paper_value)
        ok_abs = self.absolute is None or diff <= self.absolute + 1e-12
        ok_rel = (self.relative is None or diff <= self.floor + 1e-12
                  or diff <= self.relative * abs(paper_value) + 1e-12)
        return ok_abs and ok_rel

    def describe(self) -> str:
        """The rule in words, e.g. "within 0.5 percentage points and within 25% of the paper's"."""
        if self.at_most:
            return "ours at most the paper's bound"
        parts = []
        if self.absolute is not None:
            parts.append(f"within {self.absolute * 100:g} percentage points")
        if self.relative is not None:
            rel = f"within {self.relative:.0%} of the paper's figure"
            if self.floor:
                rel += f" (or {self.floor * 100:g} points, for figures near zero)"
            parts.append(rel)
        return " and ".join(parts)


#: The verdict rules, by the kind of figure.
TOLERANCES: dict[str, Tolerance] = {
    "error": Tolerance(
        "clean error rate", absolute=0.005, relative=0.25, floor=0.002,
        why="On 10,000 test images the binomial standard error of a 7% error is 0.26 points and "
            "of a 1.6% error 0.13 points; 0.5 points (and a quarter of a small error) leaves "
            "room for sampling and for the seed of a retrained network, and for nothing larger."),
    "transfer": Tolerance(
        "error on a perturbed set", absolute=0.05, relative=0.5, floor=0.01,
        why="A transfer rate depends on two separately trained networks and one attack run each "
            "(the paper reports a single run); 5 points is the precision at which the paper's "
            "discussion reads its Tables 2 and 4, and a small rate must also be within half of "
            "itself, so that 2% against 6% is not called the same."),
    "accuracy": Tolerance(
        "accuracy under noise or attack", absolute=0.05, relative=0.5, floor=0.01,
        why="As for transfer rates: a property of one trained network on one perturbed set."),
    "distortion": Tolerance(
        "average minimum distortion", relative=0.2,
        why="The distortion an attack finds depends on its search over c, its stopping rules and "
            "the choice of targets, none of which the paper states; 20% separates the same order "
            "of perturbation from a different one."),
    "bound": Tolerance(
        "upper Lipschitz bound", relative=0.1,
        why="A bound is a deterministic function of the weights; 10% allows for a different "
            "copy of the same architecture's trained weights."),
    "at_most": Tolerance(
        "stated upper bound", at_most=True,
        why="The paper states this claim as a bound (\"below 1.2%\"), so ours must not exceed it."),
}


def judge(ours: float | None, paper_value: float | None, kind: str) -> str:
    """The verdict for one figure: reproduced, differs, or not available here (no figure).

    Raises:
        ValueError: ``kind`` is not a key of ``TOLERANCES``.
    """
    checks.one_of("kind", kind, sorted(TOLERANCES))
    if ours is None or paper_value is None:
        return UNAVAILABLE
    if not (math.isfinite(ours) and math.isfinite(paper_value)):
        return UNAVAILABLE
    return REPRODUCED if TOLERANCES[kind].passes(ours, paper_value) else DIFFERS
