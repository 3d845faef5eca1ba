"""The trained models and the results in one archive: packed after ``make book``, installed
anywhere, so that every chapter opens at book scale without training.

Why: ``make book`` trains the paper's ten networks and runs every experiment, about twenty
minutes on two cores (README). A reader who only wants to open a chapter needs what the
chapters read: the zoo's cache files (``data/models``), the results files (``data/results``)
and the data files those name (the attack viewers' frames, ``data/adversarial/frames-*.npz``).
``pack`` writes them into one zip with a manifest (each member's path under ``data/``, sha256
and size; each model's zoo name and cache key). ``install`` verifies all of it before it writes
anything: an archive that is damaged, made by another version of the models, or that names a
file outside ``data/`` is refused and leaves ``data/`` as it was. Model files are read with
``torch.load(weights_only=True)``, which runs no code from the file.

Left out: MNIST (``python -m intriguing data`` fetches it and checks pinned sha256s) and the
adversarial sets (one 10,000-image set is tens of MB and deflates poorly). The two chapters that
read a set (``advsets.load``: Blind spots, Transferability) attack again on first use, a few
seconds to tens of seconds per set at book scale, and cache it.

The book offers the archive for download (``make models-archive``); ``python -m intriguing
models install ARCHIVE_OR_URL`` installs it (``book/run_yourself.md``).

References: Szegedy et al. 2014, arXiv:1312.6199, Tables 1 and 3 (the models).
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import config, files, results

#: The manifest's layout version this code writes, and those it reads.
FORMAT = 1
KNOWN_FORMATS = (1,)
MANIFEST = "manifest.json"
#: The folders of ``data/`` an archive may write into (``config``'s models, results and
#: adversarial folders); nothing else, and nothing above ``data/``.
FOLDERS = ("models", "results", "adversarial")
#: What a member is: a zoo cache file, a results file, or a viewer's frames file.
KINDS = ("model", "results", "frames")
#: The most an archive may unpack to (all of it is held in memory while it is checked).
MAX_BYTES = 1 << 30
#: How long a download may stall before it is abandoned (seconds).
TIMEOUT_S = 60
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ArchiveError(ValueError):
    """An archive that ``install`` refuses; the message says what is wrong with it."""


def default_path(scale: str | config.Scale | None = None) -> Path:
    """Where ``make book`` puts the archive: ``book/_web/html/downloads/`` (``_config.yml``'s
    ``html_extra_path`` copies ``book/_web/html`` to the site's root)."""
    sc = config.get_scale(scale)
    return (config.repo_root() / "book" / "_web" / "html" / "downloads"
            / f"intriguing-models-{sc.name}.zip")


def _rel(path: Path) -> str:
    """``path`` relative to the data folder, with forward slashes (a member's name)."""
    return path.relative_to(config.data_dir()).as_posix()


def _named_files(doc: dict[str, Any]) -> list[str]:
    """The data files a results file names (rows' ``file``: the viewers' frames)."""
    return [r["file"] for r in doc.get("rows", []) if isinstance(r, dict)
            and isinstance(r.get("file"), str) and r["file"].startswith("adversarial/")
            and r["file"].endswith(".npz")]


def planned(scale: str | config.Scale | None = None) -> list[dict[str, Any]]:
    """What ``pack`` puts in the archive at ``scale``, whether present or not.

    Every zoo model (``zoo.ALL``) at the scale's training scale (``config.training_scale``),
    every experiment's results file (``experiments.REGISTRY``) at the scale, and each frames
    file a present results file names.

    Returns:
        One dict per member: ``path`` (relative to ``data/``), ``kind``, and ``model`` and
        ``cache_key`` for a model, ``results`` for a results file.
    """
    from ..engine import zoo
    from ..experiments import REGISTRY

    sc = config.get_scale(scale)
    out: list[dict[str, Any]] = [
        {"path": _rel(zoo.cache_path(name, sc)), "kind": "model", "model": name,
         "cache_key": zoo.cache_key(zoo.spec(name), sc)} for name in zoo.ALL]
    named: list[str] = []
    for name in REGISTRY:
        file = results.path(name, sc)
        out.append({"path": _rel(file), "kind": "results", "results": name})
        if file.is_file():
            named += _named_files(json.loads(file.read_text(encoding="utf-8")))
    out += [{"path": p, "kind": "frames"} for p in dict.fromkeys(named)]
    return out


def pack(out: str | os.PathLike, scale: str | config.Scale | None = "book") -> dict[str, Any]:
    """Write the trained zoo, the results and the frames at ``scale`` into one zip, atomically.

    The zip holds ``manifest.json`` (format, package version and commit, scale, creation time
    in UTC, and per member: path relative to ``data/``, sha256, bytes, and for a model its zoo
    name and cache key) and the members under those paths. A ``<out>.sha256`` file beside it
    holds the archive's sha256 in ``sha256sum``'s format, for ``install --sha256``.

    Args:
        out: the zip to write (its folder is created).
        scale: "smoke", "book" or "paper" (paper scale holds book scale's models).

    Returns:
        ``path``, ``bytes`` and ``sha256`` of the archive, ``scale``, the ``models``,
        ``results`` and ``frames`` it holds, and ``member_bytes`` (their size unpacked).

    Raises:
        FileNotFoundError: a model, results or frames file is missing (all are named).
        ValueError: a model's cache file holds another key (it would be retrained).
    """
    from . import cache

    sc = config.get_scale(scale)
    root = config.data_dir()
    plan = planned(sc)
    missing = [f"{m['kind']} {m.get('model') or m.get('results') or m['path']} "
               f"({root / m['path']})" for m in plan if not (root / m["path"]).is_file()]
    if missing:
        raise FileNotFoundError(
            f"cannot pack the {sc.name}-scale archive: missing {'; '.join(missing)}. Run "
            f"`make book{'' if sc.name == 'book' else f' SCALE={sc.name}'}` (or `python -m "
            f"intriguing run-all --scale {sc.name}`) first")
    entries = []
    for m in plan:
        data = (root / m["path"]).read_bytes()
        if m["kind"] == "model":
            entry = cache.torch_load(root / m["path"])
            found = entry.get("key") if isinstance(entry, dict) else None
            if found != m["cache_key"]:
                raise ValueError(f"model cache {root / m['path']} holds key {found!r}, not "
                                 f"{m['cache_key']!r}: run `python -m intriguing train "
                                 f"{m['model']!r} --scale {sc.name}` first")
        entries.append(({**m, "sha256": files.sha256_bytes(data), "bytes": len(data)}, data))

    from .. import __version__

    created = datetime.now(UTC).replace(microsecond=0)
    manifest = {"format": FORMAT, "package": "intriguing", "version": __version__,
                "commit": results.git_commit(), "scale": sc.name,
                "created": created.isoformat().replace("+00:00", "Z"),
                "members": [m for m, _ in entries]}
    out = Path(out)
    stamp = created.timetuple()[:6]
    with files.atomic_open(out, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:
        for name, data in [(MANIFEST, json.dumps(manifest, indent=2).encode()),
                           *((m["path"], d) for m, d in entries)]:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, data)
    digest = files.sha256_file(out)
    files.atomic_write_bytes(out.with_name(out.name + ".sha256"),
                             f"{digest}  {out.name}\n".encode())
    return {"path": str(out), "bytes": out.stat().st_size, "sha256": digest, "scale": sc.name,
            "models": [m["model"] for m, _ in entries if m["kind"] == "model"],
            "results": [m["results"] for m, _ in entries if m["kind"] == "results"],
            "frames": [m["path"] for m, _ in entries if m["kind"] == "frames"],
            "member_bytes": sum(m["bytes"] for m, _ in entries)}


# --- install -----------------------------------------------------------------------------------

def _fetch(source: str | os.PathLike, folder: Path) -> Path:
    """A local path as is; an http(s) or file URL downloaded into ``folder``."""
    text = os.fspath(source)
    scheme = urllib.parse.urlsplit(text).scheme.lower()
    if scheme in ("http", "https", "file"):
        dest = folder / "archive.zip"
        got = 0
        try:
            with urllib.request.urlopen(text, timeout=TIMEOUT_S) as resp, open(dest, "wb") as fh:
                while block := resp.read(1 << 20):
                    got += len(block)
                    if got > MAX_BYTES:
                        raise ArchiveError(f"{text} is larger than {MAX_BYTES:,} bytes")
                    fh.write(block)
        except (urllib.error.URLError, OSError) as exc:
            raise ArchiveError(f"cannot download {text}: {exc}") from exc
        return dest
    if len(scheme) > 1:  # one letter: a Windows drive
        raise ValueError(f"source must be a path or an http(s) or file:// URL, got {text!r}")
    path = Path(text).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"source {path} is not a file")
    return path


def _check_path(name: object) -> str:
    """A member's name if it is a plain relative path into one of ``FOLDERS`` of ``data/``."""
    if not isinstance(name, str) or not name:
        raise ArchiveError(f"member path must be a non-empty string, got {name!r}")
    parts = name.split("/")
    if (name.startswith("/") or "\\" in name or ":" in name or "\0" in name
            or any(p in ("", ".", "..") for p in parts)):
        raise ArchiveError(f"member {name!r} is not a plain path inside data/ (absolute, '..', "
                           "a drive or a backslash): refused")
    if len(parts) < 2 or parts[0] not in FOLDERS:
        raise ArchiveError(f"member {name!r} is not under data/"
                           f"{', data/'.join(FOLDERS)}: refused")
    return name


def _check_manifest(raw: bytes) -> dict[str, Any]:
    """The manifest as a dict, its format, scale and member list checked."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"{MANIFEST} is not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ArchiveError(f"{MANIFEST} must hold a JSON object, got {type(doc).__name__}")
    fmt = doc.get("format")
    if fmt not in KNOWN_FORMATS:
        raise ArchiveError(f"{MANIFEST} has format {fmt!r}; this code reads formats "
                           f"{list(KNOWN_FORMATS)} (the archive names package version "
                           f"{doc.get('version')!r})")
    if doc.get("scale") not in config.SCALES:
        raise ArchiveError(f"{MANIFEST} has scale {doc.get('scale')!r}; expected one of "
                           f"{sorted(config.SCALES)}")
    members = doc.get("members")
    if not isinstance(members, list) or not members:
        raise ArchiveError(f"{MANIFEST} must list its members, got {members!r}")
    seen: set[str] = set()
    for m in members:
        if not isinstance(m, dict):
            raise ArchiveError(f"{MANIFEST}: each member must be an object, got {m!r}")
        path = _check_path(m.get("path"))
        if path in seen:
            raise ArchiveError(f"{MANIFEST} lists {path!r} twice")
        seen.add(path)
        if not isinstance(m.get("sha256"), str) or not _HEX64.match(m["sha256"]):
            raise ArchiveError(f"{MANIFEST}: member {path!r} needs a sha256 of 64 hex digits")
        if not isinstance(m.get("bytes"), int) or m["bytes"] < 0:
            raise ArchiveError(f"{MANIFEST}: member {path!r} needs its size in bytes")
        if m.get("kind") not in KINDS:
            raise ArchiveError(f"{MANIFEST}: member {path!r} has kind {m.get('kind')!r}; "
                               f"expected one of {list(KINDS)}")
        need = {"model": ("model", "cache_key"), "results": ("results",), "frames": ()}
        for field in need[m["kind"]]:
            if not isinstance(m.get(field), str):
                raise ArchiveError(f"{MANIFEST}: {m['kind']} member {path!r} needs {field!r}")
    total = sum(m["bytes"] for m in members)
    if total > MAX_BYTES:
        raise ArchiveError(f"the archive unpacks to {total:,} bytes, more than {MAX_BYTES:,}")
    return doc


def _read(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and every member's bytes, after the zip's structure and each member's size
    and sha256 are checked against the manifest."""
    if not zipfile.is_zipfile(path):
        raise ArchiveError(f"{path.name} is not a zip archive")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                raise ArchiveError(f"{path.name} holds a name twice")
            if MANIFEST not in names:
                raise ArchiveError(f"{path.name} has no {MANIFEST}: not an archive made by "
                                   "`python -m intriguing models pack`")
            manifest = _check_manifest(zf.read(MANIFEST))
            listed = {m["path"]: m for m in manifest["members"]}
            for info in infos:
                if info.filename == MANIFEST:
                    continue
                _check_path(info.filename)
                if stat.S_ISLNK(info.external_attr >> 16) or info.is_dir():
                    raise ArchiveError(f"member {info.filename!r} is a link or a folder: refused")
                if info.flag_bits & 0x1:
                    raise ArchiveError(f"member {info.filename!r} is encrypted: refused")
                if info.filename not in listed:
                    raise ArchiveError(f"member {info.filename!r} is not in {MANIFEST}: refused")
            absent = [p for p in listed if p not in names]
            if absent:
                raise ArchiveError(f"{MANIFEST} lists members the archive lacks: {absent}")
            blobs = {}
            for p, m in listed.items():
                if zf.getinfo(p).file_size != m["bytes"]:
                    raise ArchiveError(f"member {p!r} holds {zf.getinfo(p).file_size:,} bytes, "
                                       f"{MANIFEST} says {m['bytes']:,}: damaged")
                data = zf.read(p)
                digest = files.sha256_bytes(data)
                if digest != m["sha256"]:
                    raise ArchiveError(f"member {p!r} is damaged: sha256 {digest} != "
                                       f"{m['sha256']} in {MANIFEST}")
                blobs[p] = data
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise ArchiveError(f"{path.name} is damaged: {exc}") from exc
    return manifest, blobs


def _check_model(m: dict[str, Any], data: bytes, sc: config.Scale, commit: object) -> None:
    """A model member is the zoo's file for its name at ``sc`` under this code, and loads
    (``commit``: the one the archive names, for the message)."""
    import torch

    from ..engine import zoo

    name = m["model"]
    if name not in zoo.SPECS:
        raise ArchiveError(f"made by another version of the models: {name!r} is not a model of "
                           f"this code's zoo ({', '.join(zoo.ALL)})")
    s = zoo.spec(name)
    want = zoo.cache_key(s, sc)
    if m["cache_key"] != want:
        raise ArchiveError(
            f"made by another version of the models: {name} has cache key {m['cache_key']} in "
            f"the archive, this code expects {want} (zoo.CACHE_VERSION {zoo.CACHE_VERSION}, "
            f"{sc.name} scale); the archive names commit {commit!r}: check that out, or pack an "
            f"archive with this code (`make models-archive`)")
    where = _rel(zoo.cache_path(name, sc))
    if m["path"] != where:
        raise ArchiveError(f"model {name} is stored as {m['path']!r}; this code reads {where!r}")
    try:
        entry = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to read: refuse
        raise ArchiveError(f"model file {m['path']!r} does not load with "
                           f"torch.load(weights_only=True): {exc}") from exc
    found = entry.get("key") if isinstance(entry, dict) else None
    if found != want:
        raise ArchiveError(f"made by another version of the models: {m['path']!r} holds cache "
                           f"key {found!r}, this code expects {want}")
    if entry.get("name") != name:
        raise ArchiveError(f"model file {m['path']!r} holds {entry.get('name')!r}, not {name!r}")
    with torch.random.fork_rng(devices=[]):  # build() seeds torch; keep the caller's stream
        net = zoo.build(s)
    try:
        net.load_state_dict(entry["state_dict"])
    except (KeyError, RuntimeError, TypeError, AttributeError) as exc:
        raise ArchiveError(f"model file {m['path']!r}: its weights do not fit {name} "
                           f"({exc})") from exc


def _check_results(m: dict[str, Any], data: bytes, sc: config.Scale) -> dict[str, Any]:
    """A results member is ``results.path(name, sc)`` and holds that results file."""
    name = m["results"]
    try:
        where = _rel(results.path(name, sc))
    except ValueError as exc:
        raise ArchiveError(f"results member {m['path']!r}: {exc}") from exc
    if m["path"] != where:
        raise ArchiveError(f"results {name} is stored as {m['path']!r}; this code reads "
                           f"{where!r}")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"results file {m['path']!r} is not JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("name") != name or doc.get("scale") != sc.name:
        got = (doc.get("name"), doc.get("scale")) if isinstance(doc, dict) else type(doc).__name__
        raise ArchiveError(f"results file {m['path']!r} must hold {name!r} at {sc.name} scale, "
                           f"got {got}")
    return doc


def _check_frames(m: dict[str, Any], data: bytes) -> None:
    """A frames member is a viewer's frames file (``AttackFrames``, no pickle)."""
    from .frames import AttackFrames

    if not (m["path"].startswith("adversarial/") and m["path"].endswith(".npz")):
        raise ArchiveError(f"frames member {m['path']!r} must be adversarial/*.npz")
    try:
        AttackFrames.load(io.BytesIO(data))
    except Exception as exc:  # any failure to read: refuse
        raise ArchiveError(f"frames file {m['path']!r} does not load: {exc}") from exc


#: The Makefile's stamp that every experiment has run at a scale (``data/results/.made-%``).
MADE_STAMP = ".made-{scale}"


def install(source: str | os.PathLike, *, sha256: str | None = None) -> dict[str, Any]:
    """Verify an archive made by ``pack``, then write its members into ``config.data_dir()``.

    Checks, all before anything is written: the archive's sha256 (when given); a zip with a
    manifest of a known format and a known scale; every member listed in the manifest and
    every listed member present, of the listed size and sha256, a plain file (no link) under
    ``data/models``, ``data/results`` or ``data/adversarial`` (no absolute path, no '..');
    every model file loads with ``torch.load(weights_only=True)``, holds the cache key this
    code computes for its name and scale (``zoo.cache_key``) and fits its network; every
    results file is the one its name and scale select; every frames file loads and every
    frames file a results file names is in the archive. Then each member is written
    atomically (``files.atomic_write_bytes``), results last, and the Makefile's stamp
    ``data/results/.made-<scale>`` is written so that ``make lab`` and ``make book`` use the
    installed results instead of running every experiment again.

    Args:
        source: a path, or an http(s) or file:// URL (downloaded to a temporary file).
        sha256: the archive's expected sha256 (64 hex digits), e.g. from ``<archive>.sha256``.

    Returns:
        ``scale``, the ``models`` and ``results`` installed, the number of ``frames`` files,
        ``bytes`` written, and ``data_dir``.

    Raises:
        ArchiveError (a ValueError): the archive is refused; the message says why. ``data/``
            is unchanged.
        ValueError: ``sha256`` is not 64 hex digits, or ``source`` is not a path or URL.
        FileNotFoundError: ``source`` is a path that does not exist.
    """
    if sha256 is not None and (not isinstance(sha256, str)
                               or not _HEX64.match(sha256.strip().lower())):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    with tempfile.TemporaryDirectory(prefix="intriguing-archive-") as tmp:
        path = _fetch(source, Path(tmp))
        if sha256 is not None:
            digest = files.sha256_file(path)
            if digest != sha256.strip().lower():
                raise ArchiveError(f"the archive's sha256 is {digest}, expected "
                                   f"{sha256.strip().lower()}: refused")
        manifest, blobs = _read(path)
    sc = config.get_scale(manifest["scale"])
    members = manifest["members"]
    docs = {}
    for m in members:
        data = blobs[m["path"]]
        if m["kind"] == "model":
            _check_model(m, data, sc, manifest.get("commit"))
        elif m["kind"] == "results":
            docs[m["path"]] = _check_results(m, data, sc)
        else:
            _check_frames(m, data)
    held = {m["path"] for m in members if m["kind"] == "frames"}
    for p, doc in docs.items():
        lacking = [f for f in _named_files(doc) if f not in held]
        if lacking:
            raise ArchiveError(f"results file {p!r} names {lacking}, which the archive lacks")

    root = config.data_dir()
    order = sorted(members, key=lambda m: m["kind"] == "results")  # results last
    for m in order:
        files.atomic_write_bytes(root / m["path"], blobs[m["path"]])
    # The Makefile's stamp for "every experiment has run at this scale": without it `make lab`
    # and `make book` would run them all again over the installed results.
    files.atomic_write_bytes(config.results_dir() / MADE_STAMP.format(scale=sc.name), b"")
    return {"scale": sc.name, "data_dir": str(root),
            "models": [m["model"] for m in members if m["kind"] == "model"],
            "results": [m["results"] for m in members if m["kind"] == "results"],
            "frames": len(held), "bytes": sum(m["bytes"] for m in members)}


__all__ = ["FORMAT", "KNOWN_FORMATS", "MANIFEST", "ArchiveError", "default_path", "install",
           "pack", "planned"]
