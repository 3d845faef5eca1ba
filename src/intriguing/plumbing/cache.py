"""On-disk caches of computed things (trained models, adversarial sets, bounds): the key, the read
that trusts only a matching entry, and the atomic save.

Why: training a model or attacking 10,000 images takes minutes, so the results are cached under
``data/``. A cache file is named and keyed by a hash of everything that determines its content
(settings, scale, the keys of the models it depends on, a ``CACHE_VERSION``); the file stores
that key again, and an entry whose key differs, or that cannot be read, is recomputed with a
warning, never trusted and never a crash. Entries are written atomically (``files``), so an
interrupted run leaves no half-written file, and read with ``torch.load(weights_only=True)``,
which refuses to run code from a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import files


def key(payload: Any) -> str:
    """12 hex digits of sha256 over ``payload`` as JSON with sorted keys.

    Args:
        payload: plain JSON data (dicts, lists, strings, numbers) naming everything that
            determines the cached content.

    Returns:
        The first 12 hex digits of ``sha256(json.dumps(payload, sort_keys=True))``: the same
        text for the same payload in any process, whatever the order of its dicts.
    """
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def torch_load(path: str | os.PathLike) -> Any:
    """``torch.load`` onto the CPU with ``weights_only=True`` (no code runs from the file)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def read(path: str | os.PathLike, key: str, *,
         load: Callable[[Path], Any] = torch_load,
         check: Callable[[dict], None] | None = None,
         what: str = "cache", redo: str = "recomputing") -> dict | None:
    """The entry stored at ``path``, or None when there is none or it cannot be trusted.

    Args:
        path: the cache file.
        key: the key the entry must hold under ``"key"``.
        load: reads the file (default :func:`torch_load`).
        check: further tests of a readable entry with the right key; it raises to reject it.
        what, redo: the warning's words: "``what`` ``path`` is corrupted or stale (why);
            ``redo``".

    Returns:
        The entry (a dict), or None: silently when ``path`` does not exist, with a
        ``UserWarning`` when it is unreadable, not a dict, holds another key or fails ``check``.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        entry = load(path)
        found = entry.get("key") if isinstance(entry, dict) else None
        if found != key:
            raise ValueError(f"cache key {found!r} != {key!r}")
        if check is not None:
            check(entry)
        return entry
    except Exception as exc:  # any failure to read means: make it again
        warnings.warn(f"{what} {path} is corrupted or stale ({exc}); {redo}", stacklevel=3)
        return None


def read_or_make(path: str | os.PathLike, key: str, make: Callable[[], dict], *,
                 load: Callable[[Path], Any] = torch_load,
                 save: Callable[[Path, dict], None] = files.atomic_torch_save,
                 check: Callable[[dict], None] | None = None,
                 what: str = "cache", redo: str = "recomputing",
                 fresh: bool = False) -> dict:
    """The entry at ``path`` if :func:`read` trusts it; else ``{"key": key, **make()}``, saved.

    Args:
        path, key, load, check, what, redo: as in :func:`read`.
        make: computes the entry's content (without the key).
        save: writes an entry atomically (default :func:`files.atomic_torch_save`).
        fresh: ignore the file and make the entry again (a retrain).

    Returns:
        The entry, its ``"key"`` first.
    """
    entry = None if fresh else read(path, key, load=load, check=check, what=what, redo=redo)
    if entry is None:
        entry = {"key": key, **make()}
        save(Path(path), entry)
    return entry
