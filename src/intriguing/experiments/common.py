"""What the experiments share: cached adversarial sets and writing a results file on them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..engine import advsets, attacks
from ..plumbing import config, results


def adversarial_sets(names: list[str], sc: config.Scale, split: str, limit: int | None,
                     progress: bool) -> tuple[dict[str, dict], float]:
    """Each model's cached adversarial set (made once, on first use) and the seconds spent here."""
    t0 = time.perf_counter()
    sets = {n: advsets.load(n, split=split, limit=limit, scale=sc, progress=progress)
            for n in names}
    return sets, time.perf_counter() - t0


def write_attacked(name: str, rows: list[dict], sc: config.Scale, start: float,
                   advs: dict[str, dict], in_load: float, settings: dict,
                   summarize: Callable[[dict], dict] | None = None) -> dict[str, Any]:
    """Write a results file that rests on cached adversarial sets, and read it back.

    Adds the attack's settings and each set's attack time to ``settings``; ``seconds`` is each
    set's own attack time (when it was made) plus everything else of this call since ``start``.
    """
    attack_seconds = {n: float(a["seconds"]) for n, a in advs.items()}
    settings = {**settings, "target_seed": advsets.TARGET_SEED,
                "attack": attacks.LBFGSSettings().as_dict(), "attack_seconds": attack_seconds}
    own = time.perf_counter() - start - in_load
    results.write(name, rows, scale=sc.name, seconds=own + sum(attack_seconds.values()),
                  settings=settings, summarize=summarize)
    return results.read(name, sc)
