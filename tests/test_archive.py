"""The models archive (``plumbing.archive``): pack -> install gives the same files, and every
damaged, foreign or unsafe archive is refused with a clear message and leaves ``data/`` as it was.

A one-model zoo (FC10(1), untrained weights written by the project's cache writer) and two
results files, one naming a tiny frames file, stand in for a built book: fast, and the checks
are the same as for the real ten models.
"""

from __future__ import annotations

import functools
import http.server
import json
import stat
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

import intriguing.experiments
from intriguing import zoo
from intriguing.plumbing import archive, cache, cli, config, files, results
from intriguing.plumbing.frames import AttackFrames

MODEL = "FC10(1)"
SCALE = "smoke"
FRAMES = "adversarial/frames-FC10_1-1-000000000000.npz"


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes)."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _installed(root: Path) -> dict[str, bytes]:
    """``_snapshot`` of a data dir after an install, without make's stamp (which it must hold)."""
    got = _snapshot(root)
    assert got.pop(f"results/.made-{SCALE}") == b""
    return got


def _frames() -> AttackFrames:
    probs = np.full((1, 1, 1, 1, 10), 0.1)
    return AttackFrames(originals=np.zeros((1, 28, 28)), labels=np.array([3]),
                        c_grid=np.array([1.0]), targets=np.array([5]),
                        adversarial=np.zeros((1, 1, 1, 28, 28)), distortion=np.zeros((1, 1, 1)),
                        probs=probs, model_names=np.array([MODEL]), source=MODEL)


@pytest.fixture
def built(monkeypatch, tmp_path):
    """A data dir holding what ``pack`` takes at smoke scale, for a one-model zoo and two
    experiments; returns the data dir."""
    src = tmp_path / "src"
    monkeypatch.setenv(config.DATA_DIR_ENV, str(src))
    monkeypatch.setattr(zoo, "ALL", [MODEL])
    monkeypatch.setattr(intriguing.experiments, "REGISTRY",
                        {"table1": None, "viewer_frames": None})
    s = zoo.spec(MODEL)
    cache.read_or_make(zoo.cache_path(MODEL, SCALE), zoo.cache_key(s, config.get_scale(SCALE)),
                       lambda: {"name": MODEL, "spec": json.dumps(s.as_dict()), "scale": SCALE,
                                "state_dict": zoo.build(s).state_dict(), "history": {}})
    results.write("table1", [{"model": MODEL, "test_error": results.cell(0.5)}], scale=SCALE,
                  seconds=0.0)
    _frames().save(src / FRAMES)
    results.write("viewer_frames", [{"viewer": "blind_spots", "source": MODEL, "file": FRAMES}],
                  scale=SCALE, seconds=0.0)
    return src


@pytest.fixture
def packed(built, tmp_path):
    """``(archive path, pack's summary)`` of the ``built`` data dir."""
    out = tmp_path / "out" / "models.zip"
    return out, archive.pack(out, scale=SCALE)


@pytest.fixture
def target(monkeypatch, tmp_path):
    """An install target holding one older file, now the data dir; returns it."""
    dst = tmp_path / "dst"
    (dst / "results" / SCALE).mkdir(parents=True)
    (dst / "results" / SCALE / "table1.json").write_text('{"older": true}\n')
    monkeypatch.setenv(config.DATA_DIR_ENV, str(dst))
    return dst


def _rewrite(src: Path, dst: Path, *, manifest=None, members=None) -> Path:
    """A copy of archive ``src`` at ``dst`` with its manifest and members edited (each edit is
    a function of the parsed manifest / the dict of member bytes, changing it in place)."""
    with zipfile.ZipFile(src) as zf:
        doc = json.loads(zf.read(archive.MANIFEST))
        blobs = {n: zf.read(n) for n in zf.namelist() if n != archive.MANIFEST}
    if manifest:
        manifest(doc)
    if members:
        members(blobs)
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(archive.MANIFEST, json.dumps(doc))
        for name, data in blobs.items():
            zf.writestr(name, data)
    return dst


def test_pack_writes_the_manifest_and_the_members(built, packed):
    out, info = packed
    assert info["models"] == [MODEL] and info["results"] == ["table1", "viewer_frames"]
    assert info["frames"] == [FRAMES] and info["scale"] == SCALE
    assert info["bytes"] == out.stat().st_size and info["sha256"] == files.sha256_file(out)
    assert (out.parent / "models.zip.sha256").read_text() == f"{info['sha256']}  models.zip\n"
    with zipfile.ZipFile(out) as zf:
        doc = json.loads(zf.read(archive.MANIFEST))
        names = set(zf.namelist())
    assert doc["format"] == archive.FORMAT and doc["scale"] == SCALE
    assert doc["created"].endswith("Z") and doc["version"] == intriguing.__version__
    by_path = {m["path"]: m for m in doc["members"]}
    model_path = zoo.cache_path(MODEL, SCALE).relative_to(built).as_posix()
    assert names == {archive.MANIFEST, *by_path}
    assert set(by_path) == {model_path, "results/smoke/table1.json",
                            "results/smoke/viewer_frames.json", FRAMES}
    m = by_path[model_path]
    assert m["model"] == MODEL and m["kind"] == "model"
    assert m["cache_key"] == zoo.cache_key(zoo.spec(MODEL), config.get_scale(SCALE))
    for path, m in by_path.items():
        data = (built / path).read_bytes()
        assert (m["bytes"], m["sha256"]) == (len(data), files.sha256_bytes(data))


def test_round_trip_into_an_empty_data_dir_is_byte_identical(built, packed, monkeypatch,
                                                             tmp_path):
    out, _ = packed
    dst = tmp_path / "empty"
    monkeypatch.setenv(config.DATA_DIR_ENV, str(dst))
    got = archive.install(out)
    stamp = f"results/.made-{SCALE}"  # make's stamp: make lab/book use the installed results
    installed = _snapshot(dst)
    assert installed.pop(stamp) == b"" and stamp not in _snapshot(built)
    assert installed == _snapshot(built)
    assert got["models"] == [MODEL] and got["results"] == ["table1", "viewer_frames"]
    assert got["frames"] == 1 and got["scale"] == SCALE
    assert got["bytes"] == sum(len(b) for b in _snapshot(built).values())
    assert zoo.is_cached(MODEL, scale=SCALE)  # the zoo reads it without retraining


def test_install_replaces_older_files_and_takes_a_file_url_with_its_sha256(built, packed,
                                                                           target):
    out, info = packed
    archive.install(out.as_uri(), sha256=info["sha256"].upper())
    assert _installed(target) == _snapshot(built)


def test_install_downloads_over_http(built, packed, target, monkeypatch):
    out, info = packed
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(out.parent)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{out.name}"
        archive.install(url, sha256=info["sha256"])
        with pytest.raises(archive.ArchiveError, match="cannot download .*404"):
            archive.install(url + ".missing")
    finally:
        server.shutdown()
        server.server_close()
    assert _installed(target) == _snapshot(built)


def _flip_member_byte(out: Path, dst: Path) -> Path:
    """``out`` with one byte of the model's compressed data flipped (the zip's CRC fails)."""
    raw = bytearray(out.read_bytes())
    with zipfile.ZipFile(out) as zf:
        info = next(i for i in zf.infolist() if i.filename.startswith("models/"))
    head = raw[info.header_offset:info.header_offset + 30]
    start = (info.header_offset + 30 + int.from_bytes(head[26:28], "little")
             + int.from_bytes(head[28:30], "little"))
    raw[start + info.compress_size // 2] ^= 0xFF
    dst.write_bytes(bytes(raw))
    return dst


def _changed_member(blobs):
    key = next(k for k in blobs if k.startswith("results/"))
    blobs[key] = blobs[key].replace(b'"smoke"', b'"smoky"')


def _escape(path):
    def edit(doc):
        doc["members"][0]["path"] = path
    return edit


def _escaped_member(path):
    def edit(blobs):
        model = next(k for k in blobs if k.startswith("models/"))
        blobs[path] = blobs.pop(model)
    return edit


def _without_frames(doc):
    doc["members"] = [m for m in doc["members"] if m["kind"] != "frames"]


def _drop_frames(blobs):
    blobs.pop(FRAMES)


def _without_manifest(out: Path, dst: Path) -> Path:
    """``out`` without its manifest."""
    with zipfile.ZipFile(out) as zf, zipfile.ZipFile(dst, "w") as new:
        for name in zf.namelist():
            if name != archive.MANIFEST:
                new.writestr(name, zf.read(name))
    return dst


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _symlink_archive(out: Path, dst: Path) -> Path:
    """``out`` with the frames member stored as a symbolic link (same bytes, listed)."""
    with zipfile.ZipFile(out) as zf, zipfile.ZipFile(dst, "w") as new:
        for info in zf.infolist():
            data = zf.read(info)
            if info.filename == FRAMES:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            new.writestr(info, data)
    return dst


REFUSED = {
    "flipped-byte": (lambda out, d: _flip_member_byte(out, d), "is damaged"),
    "changed-member": (lambda out, d: _rewrite(out, d, members=_changed_member),
                       "is damaged: sha256"),
    "dot-dot": (lambda out, d: _rewrite(out, d, manifest=_escape("models/../../evil.pt"),
                                        members=_escaped_member("models/../../evil.pt")),
                "'..'"),
    "absolute": (lambda out, d: _rewrite(out, d, manifest=_escape("/tmp/evil.pt"),
                                         members=_escaped_member("/tmp/evil.pt")),
                 "not a plain path inside data/"),
    "outside-folders": (lambda out, d: _rewrite(out, d, manifest=_escape("mnist/evil.pt"),
                                                members=_escaped_member("mnist/evil.pt")),
                        "is not under data/models, data/results, data/adversarial"),
    "unlisted-member": (lambda out, d: _rewrite(
        out, d, members=lambda b: b.__setitem__("results/extra.json", b"{}")),
        "is not in manifest.json"),
    "symlink": (_symlink_archive, "is a link"),
    "wrong-cache-key": (lambda out, d: _rewrite(out, d, manifest=lambda doc: doc["members"][0]
                                                .__setitem__("cache_key", "0" * 12)),
                        "made by another version of the models: FC10\\(1\\) has cache key "
                        "000000000000"),
    "no-manifest": (lambda out, d: _without_manifest(out, d), "has no manifest.json"),
    "unknown-format": (lambda out, d: _rewrite(out, d, manifest=lambda doc: doc.update(
        format=99)), "format 99"),
    "unknown-scale": (lambda out, d: _rewrite(out, d, manifest=lambda doc: doc.update(
        scale="huge")), "scale 'huge'"),
    "frames-left-out": (lambda out, d: _rewrite(out, d, manifest=_without_frames,
                                                members=_drop_frames), "which the archive lacks"),
    "not-a-zip": (lambda out, d: _written(d, b"not a zip file"), "is not a zip archive"),
}




@pytest.mark.parametrize("case", list(REFUSED))
def test_a_bad_archive_is_refused_and_data_is_unchanged(case, packed, target, tmp_path):
    make, message = REFUSED[case]
    out, _ = packed
    bad = make(out, tmp_path / f"{case}.zip")
    before = _snapshot(target)
    with pytest.raises(archive.ArchiveError, match=message):
        archive.install(bad)
    assert _snapshot(target) == before


def test_wrong_archive_sha256_is_refused(packed, target):
    out, info = packed
    before = _snapshot(target)
    wrong = ("0" if info["sha256"][0] != "0" else "1") + info["sha256"][1:]
    with pytest.raises(archive.ArchiveError, match=f"sha256 is {info['sha256']}, expected "
                                                   f"{wrong}"):
        archive.install(out, sha256=wrong)
    assert _snapshot(target) == before


def test_models_of_another_code_version_are_refused(packed, target, monkeypatch):
    """The zoo's cache version bumped after packing: every model key changes."""
    out, _ = packed
    before = _snapshot(target)
    monkeypatch.setattr(zoo, "CACHE_VERSION", zoo.CACHE_VERSION + 1)
    with pytest.raises(archive.ArchiveError, match="made by another version of the models"):
        archive.install(out)
    assert _snapshot(target) == before


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"sha256": "abc"}, ValueError, "sha256 must be 64 hex digits"),
    ({"source": "ftp://example.org/a.zip"}, ValueError, "source must be a path or an http"),
    ({"source": "no-such-archive.zip"}, FileNotFoundError, "is not a file"),
], ids=["short-sha256", "ftp-url", "missing-path"])
def test_bad_install_arguments(kwargs, error, message, packed, target):
    out, _ = packed
    args = {"source": out, **kwargs}
    with pytest.raises(error, match=message):
        archive.install(args.pop("source"), **args)


def test_pack_refuses_when_a_model_is_missing(built, tmp_path):
    path = zoo.cache_path(MODEL, SCALE)
    path.unlink()
    out = tmp_path / "none.zip"
    with pytest.raises(FileNotFoundError, match=rf"missing model FC10\(1\) \({path}\).*make book "
                                                r"SCALE=smoke"):
        archive.pack(out, scale=SCALE)
    assert not out.exists()


def test_pack_names_every_missing_file(built, tmp_path):
    results.path("table1", SCALE).unlink()
    (built / FRAMES).unlink()
    with pytest.raises(FileNotFoundError, match=r"results table1 .*; frames " + FRAMES):
        archive.pack(tmp_path / "none.zip", scale=SCALE)


def test_cli_packs_and_installs(built, target, tmp_path, capsys, monkeypatch):
    out = tmp_path / "cli" / "m.zip"
    monkeypatch.setenv(config.DATA_DIR_ENV, str(built))
    assert cli.main(["models", "pack", "--scale", SCALE, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    digest = files.sha256_file(out)
    assert f"sha256 {digest}" in printed and "1 models, 2 results files, 1 frames files" in printed
    monkeypatch.setenv(config.DATA_DIR_ENV, str(target))
    assert cli.main(["models", "install", str(out), "--sha256", digest]) == 0
    assert "installed into" in capsys.readouterr().out
    assert _installed(target) == _snapshot(built)
    (tmp_path / "junk.zip").write_bytes(b"junk")
    assert cli.main(["models", "install", str(tmp_path / "junk.zip")]) == 2
    assert "is not a zip archive" in capsys.readouterr().err
    monkeypatch.setenv(config.DATA_DIR_ENV, str(tmp_path / "nothing"))
    assert cli.main(["models", "pack", "--scale", SCALE, "--out", str(out)]) == 2
    assert "cannot pack the smoke-scale archive: missing model" in capsys.readouterr().err
