"""Web assets the rendered book serves itself: the widget manager, require.js and MathJax.

Why: by default the book's pages load require.js, the Jupyter widget manager and MathJax from
public CDNs, so a reader offline (or behind a strict firewall) sees neither sliders nor formulas.
This module fetches pinned npm tarballs with ``npm pack``, checks each one against the sha512
integrity pinned below (as d2l pins its data files), extracts only the files the pages need and
writes them under ``book/_web/html``. ``_config.yml`` copies that folder to the root of
``_build/html`` (Sphinx's ``html_extra_path``) and points ``nb_ipywidgets_js`` and
``mathjax_path`` at the copies. ``make book`` runs it first; it does nothing when the files are
already there (a manifest records the integrities and each file's sha256).

Layout under ``dest`` (``book/_web``)::

    .manifest.json                 pins and file hashes (not copied into the site)
    html/widgets/require.js        requirejs 2.3.4
    html/widgets/setup.js          require.config for the widget modules; MathJax 2 shim
    html/widgets/embed-amd.js      @jupyter-widgets/html-manager 1.0.6, with its icon fonts
    html/mathjax/es5/...           MathJax 3.2.2: tex-mml-chtml.js and what it loads on demand

References: the offline-book notes (shared/notes/offline-book.md); ipywidgets' embedding guide.
The book explains none of this; README.md says how ``make book`` runs it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import posixpath
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import files

MANIFEST = ".manifest.json"
SITE = "html"  # the folder under dest that html_extra_path copies to the site root
NPM_TIMEOUT_S = 300


@dataclass(frozen=True)
class Package:
    """One pinned npm tarball and the files taken from it.

    Attributes:
        name: npm package name.
        version: exact version.
        integrity: the registry's ``dist.integrity`` (``sha512-<base64>``) for that version.
        rules: ``(pattern, destination)`` pairs; a tarball member whose whole name matches
            ``pattern`` is written to ``destination`` (``re`` group references allowed), a path
            relative to the site root. Every rule must match at least one member.
    """

    name: str
    version: str
    integrity: str
    rules: tuple[tuple[str, str], ...]

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


_FONT = r"[0-9a-f]{20}\.(?:woff2|woff|ttf|eot|svg)"
_MATHJAX_ON_DEMAND = r"(?:input|output/chtml|a11y|ui|sre|adaptors)/.+"

PACKAGES: tuple[Package, ...] = (
    Package(
        "requirejs", "2.3.4",
        "sha512-qPD5gRrj6kGQ0ZySAJgqbArkaDqPMbQIT0zSZDkIv1mfA17w/tR2Faq5l2qqRf2CdQx6FWln9nUrgd2UDzb19A==",
        ((r"package/require\.js", "widgets/require.js"),)),  # its MIT licence is in its header
    Package(
        "@jupyter-widgets/html-manager", "1.0.6",
        "sha512-+Mn+Ra8wyIHrYaUpfmf9A3dsLkt/NuwzPQN8sthdxBD35VV5cOJbpmgMhNR27n/rmP3mKyEe0PWCJrtZrXTXDQ==",
        ((r"package/dist/embed-amd\.js", "widgets/embed-amd.js"),
         (rf"package/dist/({_FONT})", r"widgets/\1"),
         (r"package/LICENSE", "widgets/LICENSE.html-manager.txt"))),
    Package(
        "mathjax", "3.2.2",
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        ((r"package/es5/tex-mml-chtml\.js", "mathjax/es5/tex-mml-chtml.js"),
         (rf"package/es5/({_MATHJAX_ON_DEMAND})", r"mathjax/es5/\1"),
         (r"package/LICENSE", "mathjax/LICENSE"))),
)

# Loaded between require.js and embed-amd.js (the order of nb_ipywidgets_js in _config.yml).
SETUP_JS = """\
/* Written by intriguing.webassets. Loaded after require.js, before embed-amd.js. */
(function () {
  "use strict";
  /* 1. The widget bundles find their icon fonts relative to each module's require.js URL,
     which by default is relative to the page (chapters/@jupyter-widgets/...: a 404).
     Map every module name to a file beside this script. */
  var src = document.currentScript.src;
  var here = src.slice(0, src.lastIndexOf("/") + 1);
  require.config({paths: {
    "@jupyter-widgets/base": here + "base",
    "@jupyter-widgets/controls": here + "controls",
    "@jupyter-widgets/html-manager": here + "html-manager",
    "@jupyter-widgets/html-manager/dist/libembed-amd": here + "libembed-amd"
  }});
  /* 2. The widget manager typesets labels with MathJax 2's MathJax.Hub.Queue whenever
     window.MathJax exists; the book loads MathJax 3, which has no Hub ("Cannot read properties
     of undefined (reading 'Queue')"). Give it a Hub that forwards to MathJax 3. */
  function queue(job) {
    var mj = window.MathJax, el = job && job[2];
    if (el && mj && typeof mj.typesetPromise === "function") {
      mj.typesetPromise([el]).catch(function () {});
    }
  }
  var hub = {Queue: queue};
  var mj = window.MathJax;
  if (!mj && document.querySelector('script[src*="mathjax"]')) {
    mj = window.MathJax = {};  /* MathJax 3 reads this object as its configuration */
  }
  if (!mj) {
    return;
  }
  if (mj.version) {  /* MathJax already started */
    mj.Hub = mj.Hub || hub;
    return;
  }
  mj.Hub = hub;  /* until MathJax 3 starts and replaces window.MathJax */
  var startup = mj.startup = mj.startup || {};
  var ready = startup.ready;
  startup.ready = function () {
    if (ready) {
      ready();
    } else {
      window.MathJax.startup.defaultReady();
    }
    window.MathJax.Hub = window.MathJax.Hub || hub;
  };
})();
"""
GENERATED: dict[str, bytes] = {"widgets/setup.js": SETUP_JS.encode()}

# The values _config.yml uses (relative to _static/, as Sphinx resolves script paths).
NB_IPYWIDGETS_JS = ("../widgets/require.js", "../widgets/setup.js", "../widgets/embed-amd.js")
MATHJAX_PATH = "../mathjax/es5/tex-mml-chtml.js"


def default_dest() -> Path:
    """``<repo>/book/_web`` (git-ignored)."""
    from . import config  # imports torch: only when no dest is given

    return config.repo_root() / "book" / "_web"


def integrity_of(data: bytes) -> str:
    """The npm ``dist.integrity`` string (``sha512-<base64>``) of a tarball's bytes."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def check_integrity(pkg: Package, data: bytes) -> None:
    """Raise ``ValueError`` naming both values when ``data`` is not the pinned tarball."""
    got = integrity_of(data)
    if got != pkg.integrity:
        raise ValueError(f"{pkg.spec}: tarball integrity mismatch: pinned {pkg.integrity}, "
                         f"got {got}")


def _safe_name(name: str, what: str) -> str:
    """Reject absolute paths and ``..``; return the normalised relative posix path."""
    p = PurePosixPath(name)
    if name.startswith(("/", "\\")) or p.is_absolute() or ".." in p.parts or "\\" in name \
            or re.match(r"^[A-Za-z]:", name):
        raise ValueError(f"{what}: unsafe path {name!r} (absolute or with '..')")
    norm = posixpath.normpath(name)
    if norm in ("", "."):
        raise ValueError(f"{what}: empty path {name!r}")
    return norm


def select_files(pkg: Package, tarball: bytes) -> dict[str, bytes]:
    """Pick ``pkg``'s files out of its tarball: {site-relative path: content}.

    Only regular files are read (links and devices are never followed or written); a member
    whose name is absolute or contains ``..`` raises ``ValueError`` before anything is written.
    """
    out: dict[str, bytes] = {}
    used = [0] * len(pkg.rules)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for member in tar.getmembers():
            name = _safe_name(member.name, pkg.spec)
            if not member.isfile():
                continue
            for r, (pattern, dest) in enumerate(pkg.rules):
                m = re.fullmatch(pattern, name)
                if m is None:
                    continue
                target = _safe_name(m.expand(dest), pkg.spec)
                fh = tar.extractfile(member)
                if fh is None:  # pragma: no cover - isfile() members always have data
                    raise ValueError(f"{pkg.spec}: cannot read {name}")
                out[target] = fh.read()
                used[r] += 1
                break
    unused = [pkg.rules[r][0] for r, n in enumerate(used) if n == 0]
    if unused:
        raise ValueError(f"{pkg.spec}: no file in the tarball matches {unused}")
    return out


def npm_pack(spec: str, workdir: Path, *, timeout: float = NPM_TIMEOUT_S) -> bytes:
    """``npm pack SPEC`` in ``workdir``; return the tarball's bytes."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to fetch the book's web assets (install nodejs/npm)")
    before = set(workdir.glob("*.tgz"))
    try:
        proc = subprocess.run(
            [npm, "pack", spec, "--ignore-scripts", "--silent"], cwd=workdir, timeout=timeout,
            capture_output=True, text=True, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"npm pack {spec} took longer than {timeout} s") from exc
    if proc.returncode != 0:
        raise RuntimeError(f"npm pack {spec} failed ({proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    made = sorted(set(workdir.glob("*.tgz")) - before)
    if len(made) != 1:
        raise RuntimeError(f"npm pack {spec}: expected one new tarball, found {made}")
    return made[0].read_bytes()


def _manifest(packages: Sequence[Package], tree: dict[str, bytes]) -> dict:
    return {
        "format": 1,
        "packages": {p.spec: p.integrity for p in packages},
        "files": {k: files.sha256_bytes(v) for k, v in sorted(tree.items())},
    }


def is_current(dest: Path, packages: Sequence[Package] = PACKAGES) -> bool:
    """True when ``dest`` holds exactly the pinned files (manifest, pins and every hash agree)."""
    try:
        doc = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if doc.get("format") != 1 or doc.get("packages") != {p.spec: p.integrity for p in packages}:
        return False
    listed = doc.get("files") or {}
    for rel, content in GENERATED.items():
        if listed.get(rel) != files.sha256_bytes(content):
            return False
    site = dest / SITE
    for rel, digest in listed.items():
        f = site / rel
        if not f.is_file() or files.sha256_file(f) != digest:
            return False
    return True


def _write_tree(dest: Path, tree: dict[str, bytes], manifest: dict) -> None:
    """Build the new folder beside ``dest``, then swap it in with renames."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}.new-", dir=dest.parent))
    old = dest.parent / f".{dest.name}.old-{stage.name.rsplit('-', 1)[-1]}"
    try:
        for rel, content in tree.items():
            path = stage / SITE / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        files.atomic_write_json(stage / MANIFEST, manifest)
        if dest.exists():
            dest.rename(old)
        stage.rename(dest)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if old.exists() and not dest.exists():
            old.rename(dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


def fetch(dest: Path | None = None, force: bool = False, *,
          packages: Sequence[Package] = PACKAGES, quiet: bool = False) -> Path:
    """Make ``dest`` hold the pinned web assets; return ``dest``.

    Args:
        dest: the folder (default ``<repo>/book/_web``); its ``html/`` subfolder is what
            ``html_extra_path`` copies to the site root.
        force: fetch and rewrite even when the manifest says the files are current.
        packages: the pins (tests pass their own).
        quiet: print nothing.

    Returns:
        ``dest``.

    Raises:
        ValueError: a tarball does not match its pinned integrity (both values in the message),
            or holds an unsafe path, or lacks a file a rule expects.
        RuntimeError: npm is missing, fails or times out.
    """
    dest = Path(dest) if dest is not None else default_dest()
    if not force and is_current(dest, packages):
        if not quiet:
            print(f"web assets up to date in {dest}")
        return dest
    tree: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="intriguing-npm-") as tmp:
        for pkg in packages:
            if not quiet:
                print(f"npm pack {pkg.spec}", flush=True)
            work = Path(tmp) / re.sub(r"[^A-Za-z0-9.-]", "_", pkg.spec)
            work.mkdir()
            data = npm_pack(pkg.spec, work)
            check_integrity(pkg, data)
            picked = select_files(pkg, data)
            clash = sorted(set(picked) & set(tree))
            if clash:
                raise ValueError(f"{pkg.spec}: files {clash} are also written by another package")
            tree.update(picked)
    tree.update(GENERATED)
    _write_tree(dest, tree, _manifest(packages, tree))
    if not quiet:
        size = sum(len(v) for v in tree.values())
        print(f"wrote {len(tree)} files ({size / 1e6:.1f} MB) to {dest / SITE}")
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m intriguing.plumbing.webassets [--dest DIR] [--force]``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m intriguing.plumbing.webassets",
                                description="Fetch the book's pinned web assets (no CDN).")
    p.add_argument("--dest", type=Path, default=None, help="default: <repo>/book/_web")
    p.add_argument("--force", action="store_true", help="fetch even if up to date")
    args = p.parse_args(argv)
    try:
        fetch(args.dest, force=args.force)
    except (RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
