"""Scales, paths under ``data/`` and seeding: the settings every other module reads.

Why: the book runs the same experiments at three sizes. ``smoke`` makes every test and notebook
finish in minutes, ``book`` (the default) is full size (full MNIST training, the full 10,000-image
test set attacked), ``paper`` uses the paper's own attacked sets (the 60,000 training images for
Tables 1-2, Szegedy et al. 2014, section 4.3). ``INTRIGUING_SCALE`` picks one;
``INTRIGUING_DATA_DIR`` moves ``data/``.
"""

from __future__ import annotations

import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from . import checks

SCALE_ENV = "INTRIGUING_SCALE"
DATA_DIR_ENV = "INTRIGUING_DATA_DIR"
DEVICE_ENV = "INTRIGUING_DEVICE"
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Scale:
    """How big an experiment runs.

    Attributes:
        name: "smoke", "book" or "paper".
        train_limit: use only the first ``train_limit`` images of a training split (None: all).
        test_limit: evaluate on the first ``test_limit`` test images (None: all 10,000).
        epoch_factor: multiplies every model's epoch count (smoke trains briefly).
        attack_split: the split attacked for Tables 1-2 ("test" or "train").
        attack_limit: attack only the first ``attack_limit`` images of it (None: all).
    """

    name: str
    train_limit: int | None
    test_limit: int | None
    epoch_factor: float
    attack_split: str
    attack_limit: int | None

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """The scale in words, for a page's scale note: training images, epochs, test images,
        attacked images."""
        train = "all 60,000" if self.train_limit is None else f"the first {self.train_limit:,}"
        epochs = ("each model's full schedule" if self.epoch_factor == 1
                  else f"{self.epoch_factor:.0%} of each model's epochs")
        test = ("all 10,000 test images" if self.test_limit is None
                else f"the first {self.test_limit:,} test images")
        split = {"train": "training", "test": "test"}[self.attack_split]
        attacked = (f"every {split} image" if self.attack_limit is None
                    else f"the first {self.attack_limit:,} {split} images")
        return f"{train} training images, {epochs}, {test}, {attacked} attacked for Tables 1-2"


#: Smoke scale is sized to tell the book's story in a few minutes (issue 18): on 10,000 training
#: images for half the epochs, FC100-100-10 reaches 5.0% test error and 73 of the 89 claims that
#: both scales make read as at book scale; on 2,000 images for a tenth of the epochs it was 16.6%
#: and 62 of 89 (measured 2026-12-07; ``run-all --scale smoke`` 187 s against 102 s on 2 cores).
SCALES: dict[str, Scale] = {
    "smoke": Scale("smoke", train_limit=10_000, test_limit=1000, epoch_factor=0.5,
                   attack_split="test", attack_limit=300),
    "book": Scale("book", train_limit=None, test_limit=None, epoch_factor=1.0,
                  attack_split="test", attack_limit=None),
    "paper": Scale("paper", train_limit=None, test_limit=None, epoch_factor=1.0,
                   attack_split="train", attack_limit=None),
}


#: Scales that train exactly the models of another scale: paper scale differs from book scale
#: only in the attacked split (section 4.3 attacks the training set), so the two share one
#: model cache instead of training the zoo twice.
MODELS_OF: dict[str, str] = {"paper": "book"}


def training_scale(scale: str | Scale | None = None) -> Scale:
    """The scale whose trained models ``scale`` uses (itself, unless listed in ``MODELS_OF``)."""
    sc = get_scale(scale)
    return SCALES[MODELS_OF[sc.name]] if sc.name in MODELS_OF else sc


def get_scale(scale: str | Scale | None = None) -> Scale:
    """Resolve a scale: an explicit argument wins, then ``$INTRIGUING_SCALE``, then "book".

    Raises:
        ValueError: the name is not one of ``SCALES``.
    """
    if isinstance(scale, Scale):
        return scale
    name = scale if scale is not None else os.environ.get(SCALE_ENV, "book")
    checks.one_of("scale" if scale is not None else f"${SCALE_ENV}", name, sorted(SCALES))
    return SCALES[name]


def repo_root() -> Path:
    """The checkout this package lives in (editable install), else the current folder."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "src" / "intriguing").is_dir():
            return parent
    return Path.cwd()


def data_dir() -> Path:
    """Root of downloads, caches and results: ``$INTRIGUING_DATA_DIR`` or ``<repo>/data``."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser().resolve() if env else repo_root() / "data"


def mnist_dir() -> Path:
    """Where the MNIST IDX files live (torchvision's layout: ``MNIST/raw``)."""
    return data_dir() / "mnist"


def models_dir() -> Path:
    """Trained-model cache."""
    return data_dir() / "models"


def results_dir() -> Path:
    """``data/results/*.json``: every number the book prints."""
    return data_dir() / "results"


def adversarial_dir() -> Path:
    """Cached adversarial sets."""
    return data_dir() / "adversarial"


def seed_everything(seed: int = DEFAULT_SEED) -> torch.Generator:
    """Seed Python, NumPy and torch, and ask torch for deterministic kernels.

    Every chapter's first cell calls this. Returns a ``torch.Generator`` seeded the same way, for
    code that wants its own stream.
    """
    checks.non_negative_int("seed", seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """An explicit device wins, then ``$INTRIGUING_DEVICE`` (e.g. ``cuda``), then the CPU.

    Why: the book's functions take a ``device`` argument; the variable lets ``make book`` and the
    chapters run on a GPU without editing a cell.

    Raises:
        ValueError: the name is not a torch device, or names CUDA where none is available.
    """
    name = device if device is not None else os.environ.get(DEVICE_ENV) or "cpu"
    source = "device" if device is not None else f"${DEVICE_ENV}"
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"{source} must name a torch device such as 'cpu' or 'cuda', "
                         f"got {name!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(dev)!r} requested but CUDA is not available")
    return dev
