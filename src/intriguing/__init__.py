"""intriguing: the engine under the book "Intriguing Properties, Reproduced".

An executable reproduction of Szegedy et al., "Intriguing properties of neural networks" (ICLR
2014, arXiv:1312.6199) on MNIST, in four layers; imports only go down the list:

- ``intriguing.display``: plots, viewers, tables, the scorecard and claims on a page. Reads
  results files and frames; never runs an attack or an experiment.
- ``intriguing.experiments``: one module per chapter and the registry of experiments; each
  writes ``data/results/<name>.json`` with the summaries and claims its chapter states.
- ``intriguing.engine``: MNIST, the paper's networks, training, the zoo, the attack.
- ``intriguing.plumbing``: scales and paths, caches and atomic writes, argument checks,
  results files, claims as data, the task graph, web assets, the CLI and benchmarks.

The public contract keeps its short names: ``from intriguing import data, zoo, attacks``.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

__version__ = "0.1.0"

#: The oldest Python the pinned stack supports (numpy 2.4 needs 3.11).
MIN_PYTHON = (3, 11)
if sys.version_info < MIN_PYTHON:
    raise RuntimeError(
        f"intriguing needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer (numpy 2.4 and torch "
        f"2.14 are built for it); this is Python {sys.version.split()[0]} at {sys.executable}. "
        "Create the environment with a newer python, e.g. `make book PYTHON=python3.12`.")

#: The public contract's modules (``from intriguing import data, zoo, attacks``), loaded on use
#: so that ``import intriguing`` stays light (the web-asset step needs no torch).
_CONTRACT = {"data": "engine.data", "zoo": "engine.zoo", "attacks": "engine.attacks"}


def __getattr__(name: str) -> ModuleType:
    if name in _CONTRACT:
        return importlib.import_module(f".{_CONTRACT[name]}", __name__)
    raise AttributeError(f"module 'intriguing' has no attribute {name!r}")
