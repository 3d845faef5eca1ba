"""Frames of the attack viewers as data: the ``AttackFrames`` type, its checks and its file.

Why: the viewers (``intriguing.display``) show adversarial examples that an experiment computed
(``intriguing.engine.frames``, run by ``make book`` as the experiment ``viewer_frames``). What
passes between the two is plain data: the attacked images, every (image, target, c) result and
every model's class probabilities, in NumPy arrays, saved as one compressed ``.npz`` file (no
pickle). Nothing here runs a model or draws a widget, so both sides can import it.

References: Szegedy et al. 2014, arXiv:1312.6199, sections 4.1-4.3 (Figure 5, Tables 3-4).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import files

SIDE = 28
N_CLASSES = 10
#: The version of the ``.npz`` layout written by ``AttackFrames.save``.
NPZ_FORMAT = 1


@dataclass(frozen=True, eq=False)
class AttackFrames:
    """Precomputed frames of an attack: every (image, target, c) and every model's answer.

    Attributes:
        originals: ``(I, 28, 28)`` pixels in [0,1].
        labels: ``(I,)`` true labels.
        c_grid: ``(C,)`` the constants c, positive and strictly ascending.
        targets: ``(T,)`` target classes (distinct, in 0..9).
        adversarial: ``(I, T, C, 28, 28)`` the attack's output for each frame, in [0,1].
        distortion: ``(I, T, C)`` sqrt(mean((x_adv - x)^2)) of each frame.
        probs: ``(I, T, C, M, 10)`` class probabilities of M models; model 0 is the attacked
            source model, the others are the models the example is transferred to.
        model_names: ``(M,)`` names of the models; ``model_names[0] == source``.
        source: name of the attacked model.

    Arrays are converted (float32, int64, str) and checked on construction; a wrong shape or
    value raises ``ValueError`` naming the field.
    """

    originals: np.ndarray
    labels: np.ndarray
    c_grid: np.ndarray
    targets: np.ndarray
    adversarial: np.ndarray
    distortion: np.ndarray
    probs: np.ndarray
    model_names: np.ndarray
    source: str

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("originals", as_float("originals", self.originals))
        n_img = check_shape("originals", self.originals, (None, SIDE, SIDE))
        check_unit("originals", self.originals)

        put("labels", as_int("labels", self.labels))
        check_shape("labels", self.labels, (n_img,))
        check_classes("labels", self.labels)

        put("c_grid", checked_c_grid(self.c_grid))
        n_c = len(self.c_grid)
        put("targets", checked_targets(self.targets))
        n_t = len(self.targets)

        put("adversarial", as_float("adversarial", self.adversarial))
        check_shape("adversarial", self.adversarial, (n_img, n_t, n_c, SIDE, SIDE))
        check_unit("adversarial", self.adversarial)

        put("distortion", as_float("distortion", self.distortion))
        check_shape("distortion", self.distortion, (n_img, n_t, n_c))
        if not np.all(np.isfinite(self.distortion)) or np.any(self.distortion < 0):
            raise ValueError("distortion must hold non-negative finite numbers")

        put("probs", as_float("probs", self.probs))
        n_m = check_shape("probs", self.probs, (n_img, n_t, n_c, None, N_CLASSES), index=3)
        check_unit("probs", self.probs)
        if not np.allclose(self.probs.sum(-1), 1.0, atol=1e-3):
            raise ValueError("probs must sum to 1 over the last axis (10 classes)")

        names = np.asarray(self.model_names)
        if names.ndim != 1 or names.shape[0] != n_m:
            raise ValueError(f"model_names must have shape ({n_m},) to match probs, "
                             f"got {names.shape}")
        if names.dtype.kind not in "UO" or not all(isinstance(n, str) and n for n in
                                                     names.tolist()):
            raise ValueError("model_names must be non-empty strings")
        if len(set(names.tolist())) != n_m:
            raise ValueError(f"model_names must be distinct, got {names.tolist()}")
        put("model_names", names.astype(str))
        if not isinstance(self.source, str) or self.source != self.model_names[0]:
            raise ValueError(f"source must be model_names[0] ({self.model_names[0]!r}), "
                             f"got {self.source!r}")

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(images I, targets T, constants C, models M)."""
        n_img, n_t, n_c, n_m, _ = self.probs.shape
        return n_img, n_t, n_c, n_m

    def save(self, path: str | Path) -> Path:
        """Write the frames to ``path`` (.npz, compressed) atomically; return the path."""
        path = Path(path)
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "source"}
        with files.atomic_open(path, "wb") as fh:
            np.savez_compressed(fh, format=np.int64(NPZ_FORMAT), source=np.str_(self.source),
                                **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path | IO[bytes]) -> AttackFrames:
        """Read frames written by ``save`` from a path or an open binary file (no pickle).

        An open file lets ``plumbing.archive`` check frames it has read from an archive before
        writing them anywhere.
        """
        source = path if hasattr(path, "read") else Path(path)
        with np.load(source, allow_pickle=False) as z:
            fmt = int(z["format"]) if "format" in z.files else None
            if fmt != NPZ_FORMAT:
                raise ValueError(f"{path}: not an AttackFrames file of format {NPZ_FORMAT} "
                                 f"(format {fmt})")
            kwargs = {f.name: z[f.name] for f in fields(cls) if f.name != "source"}
            return cls(source=str(z["source"]), **kwargs)


def _numpy(value: Any) -> Any:
    """A torch tensor as a NumPy array (duck-typed: this module does not import torch)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu().numpy()
    return value


def as_float(name: str, value: Any, dtype: type = np.float32) -> np.ndarray:
    """``value`` (array-like or tensor) as a float array; ValueError naming ``name`` if not
    numeric."""
    try:
        return np.asarray(_numpy(value), dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc


def as_int(name: str, value: Any) -> np.ndarray:
    """``value`` (array-like or tensor) as an int64 array; ValueError if it is not integer."""
    arr = np.asarray(_numpy(value))
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def checked_c_grid(value: Any) -> np.ndarray:
    """A c grid as float64 ``(C,)``: positive, finite, strictly ascending."""
    c = as_float("c_grid", value, np.float64)
    check_shape("c_grid", c, (None,))
    if not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise ValueError(f"c_grid must hold positive finite numbers, got {c}")
    if np.any(np.diff(c) <= 0):
        raise ValueError(f"c_grid must be strictly ascending, got {c}")
    return c


def checked_targets(value: Any) -> np.ndarray:
    """Target classes as int64 ``(T,)``: distinct, in 0..9."""
    tg = as_int("targets", value)
    check_shape("targets", tg, (None,))
    check_classes("targets", tg)
    if len(set(tg.tolist())) != len(tg):
        raise ValueError(f"targets must be distinct, got {tg.tolist()}")
    return tg


def check_shape(name: str, arr: np.ndarray, shape: tuple, index: int = 0) -> int:
    """Check ``arr.shape`` against ``shape`` (None: any size >= 1); return ``arr.shape[index]``."""
    ok = arr.ndim == len(shape) and all(
        (want is None and got >= 1) or got == want for got, want in zip(arr.shape, shape,
                                                                         strict=True))
    if not ok:
        dims = ["n" if s is None else str(s) for s in shape]
        readable = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
        raise ValueError(f"{name} must have shape {readable}, got {arr.shape}")
    return arr.shape[index]


def check_unit(name: str, arr: np.ndarray, tol: float = 1e-5) -> None:
    """ValueError unless every value of ``arr`` is finite and in [0,1] (within ``tol``)."""
    if not np.all(np.isfinite(arr)) or arr.min() < -tol or arr.max() > 1 + tol:
        raise ValueError(f"{name} must hold finite values in [0,1]")


def check_classes(name: str, arr: np.ndarray) -> None:
    """ValueError unless every value of ``arr`` is a class in 0..9."""
    if arr.size and (arr.min() < 0 or arr.max() >= N_CLASSES):
        raise ValueError(f"{name} must be classes in 0..{N_CLASSES - 1}, got {arr.tolist()}")


def check_index(frames: AttackFrames, i: int, t: int, k: int) -> None:
    """ValueError unless (image ``i``, target ``t``, constant ``k``) is a frame of ``frames``."""
    n_img, n_t, n_c, _ = frames.shape
    for name, value, n in (("i", i, n_img), ("t", t, n_t), ("k", k, n_c)):
        if not 0 <= int(value) < n:
            raise ValueError(f"{name} must be in 0..{n - 1}, got {value}")


__all__ = [
    "N_CLASSES", "NPZ_FORMAT", "SIDE", "AttackFrames", "as_float", "as_int", "check_classes",
    "check_index", "check_shape", "check_unit", "checked_c_grid", "checked_targets",
]
