"""Shared fixtures: synthetic MNIST stand-ins so unit tests never need the real data, and a
session's tiny zoo so they train and attack each tiny model once."""

import contextlib
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from intriguing import attacks, data, zoo
from intriguing.engine import advsets, advtrain
from intriguing.plumbing import config

#: A scale for unit tests: the synthetic set below, a sliver of each model's epochs.
TINY = config.Scale("tiny", train_limit=None, test_limit=None, epoch_factor=0.02,
                    attack_split="test", attack_limit=12)


def _synthetic_set() -> tuple[torch.Tensor, torch.Tensor]:
    """300 random 'images' labelled by brightness (the same tensors on every call)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(300, 1, 28, 28, generator=gen)
    return x, (x.mean((1, 2, 3)) * 10).long().clamp(0, 9)


def _fake_loader(x: torch.Tensor, y: torch.Tensor):
    def fake_load(split, limit=None):
        return x[:limit].clone(), y[:limit].clone()

    return fake_load



@pytest.fixture
def one_thread():
    """One torch thread for the test: small problems gain nothing from two, a busy machine loses
    much. Test files that attack tiny models use it for every test (``pytestmark``)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)

@pytest.fixture
def synthetic_mnist(monkeypatch, tmp_path):
    """300 random 'images' labelled by brightness, served for every split; data dir in tmp."""
    monkeypatch.setenv(config.DATA_DIR_ENV, str(tmp_path))
    x, y = _synthetic_set()
    monkeypatch.setattr(data, "load_mnist", _fake_loader(x, y))
    zoo._MEMO.clear()
    advtrain._MEMO.clear()
    yield x, y
    zoo._MEMO.clear()
    advtrain._MEMO.clear()


class TinyZoo:
    """Cache files made once per test session on the synthetic set, copied into a test's data dir.

    Training the tiny models is cheap, but attacking them and adversarial training are not, and
    many tests need the same ones. Each file is made on first request in the session's own data
    dir (with the synthetic set), then copied into the data dir of the asking test (the one
    ``synthetic_mnist`` set), so a test that damages or rewrites its copy changes nothing for the
    next. The caches are keyed by settings, not by data, so a copy is exactly the file the test
    would have made itself (training and the attack are deterministic; tests check both).
    ``zoo`` and ``advtrain`` memos are left as the test had them, and the files are made with the
    real training and attack even where the asking test has replaced them.
    """

    #: What tests replace (``monkeypatch.setattr``) that the session's files must not use.
    REAL = ((zoo, "_train", zoo._train), (advtrain, "fit", advtrain.fit),
            (attacks, "lbfgs", attacks.lbfgs))

    def __init__(self, root: Path):
        self.root = root
        self._made: dict[tuple, list[Path]] = {}

    @contextlib.contextmanager
    def _home(self):
        memos = (dict(zoo._MEMO), dict(advtrain._MEMO))
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(config.DATA_DIR_ENV, str(self.root))
            mp.setattr(data, "load_mnist", _fake_loader(*_synthetic_set()))
            for module, name, real in self.REAL:
                mp.setattr(module, name, real)
            zoo._MEMO.clear()
            advtrain._MEMO.clear()
            try:
                yield
            finally:
                for memo, saved in zip((zoo._MEMO, advtrain._MEMO), memos, strict=True):
                    memo.clear()
                    memo.update(saved)

    def _make(self, what: tuple, make) -> list[Path]:
        """The files ``make()`` writes in the session's data dir, made on the first call."""
        if what not in self._made:
            with self._home():
                before = set(self.root.rglob("*.pt"))
                make()
                self._made[what] = sorted(set(self.root.rglob("*.pt")) - before)
        return self._made[what]

    def _install(self, what: tuple, make) -> None:
        """Copy the files of ``_make(what, make)`` into the current data dir."""
        for src in self._make(what, make):
            dest = config.data_dir() / src.relative_to(self.root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)

    def model(self, name: str, scale: config.Scale) -> Path:
        """Install the trained zoo model ``name`` at ``scale``; returns its cache path."""
        self._install(("model", name, scale), lambda: zoo.load(name, scale=scale,
                                                                progress=False))
        return zoo.cache_path(name, scale)

    def adversarial_set(self, name: str, scale: config.Scale, *, split: str | None = None,
                        limit: int | None = None) -> None:
        """Install ``advsets.load(name, split=..., limit=..., scale=scale)``'s set and model
        (default settings and targets)."""
        self.model(name, scale)
        split = split or scale.attack_split
        limit = scale.attack_limit if limit is None else limit
        self._install(("set", name, scale, split, limit), lambda: advsets.load(
            name, split=split, limit=limit, scale=scale, progress=False))

    def adversarially_trained(self, settings: advtrain.AdvTrainSettings,
                              scale: config.Scale) -> Path:
        """Install ``advtrain.load(settings, scale=scale)``'s model; returns its cache path."""
        self._install(("advtrain", settings, scale),
                      lambda: advtrain.load(settings, scale=scale, progress=False))
        return advtrain.cache_path(settings, scale)

    def adversarial_fit(self, settings: advtrain.AdvTrainSettings,
                        scale: config.Scale) -> tuple[nn.Module, dict]:
        """What ``advtrain.fit(settings, scale=scale)`` returns (the model in eval mode and its
        history), fitted once per session; nothing is installed."""
        [src] = self._make(("advtrain", settings, scale),
                           lambda: advtrain.load(settings, scale=scale, progress=False))
        entry = torch.load(src, map_location="cpu", weights_only=True)
        model = zoo.build(zoo.spec(settings.model))
        model.load_state_dict(entry["state_dict"])
        return model.eval(), entry["history"]


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory) -> TinyZoo:
    """The session's :class:`TinyZoo`; use it inside ``synthetic_mnist``."""
    return TinyZoo(tmp_path_factory.mktemp("tiny-zoo"))


@pytest.fixture
def tiny():
    """The unit-test scale."""
    return TINY


@pytest.fixture
def tiny_model():
    """A seeded 784-16-10 sigmoid MLP in eval mode: logits for (N, 1, 28, 28) in milliseconds."""
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.Sigmoid(), nn.Linear(16, 10))
    with torch.no_grad():
        for p, scale in zip(model.parameters(), [0.1, 1.0, 2.0, 1.0]):
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return model.eval()
