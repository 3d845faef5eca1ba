"""Results files: schema, atomic writes, and readable errors."""

import json
import math

import pytest

from intriguing.plumbing import files, results


@pytest.fixture(autouse=True)
def _tmp_data(monkeypatch, tmp_path):
    monkeypatch.setenv("INTRIGUING_DATA_DIR", str(tmp_path))


def test_write_and_read_round_trip():
    rows = [{"model": "FC10(1)", "test_error": results.cell(0.2, 0.2)}]
    p = results.write("table1", rows, scale="smoke", seconds=1.5, settings={"seed": 0})
    doc = json.loads(p.read_text())
    assert doc["rows"] == rows and doc["scale"] == "smoke" and doc["seconds"] == 1.5
    assert set(doc) >= {"name", "commit", "versions", "settings", "device"}
    assert doc["versions"]["torch"]
    assert results.read("table1", "smoke") == doc
    assert results.row(doc, model="FC10(1)")["test_error"]["ours"] == 0.2


def test_cell_rejects_non_finite():
    assert results.cell(None, 0.1) == {"ours": None, "paper": 0.1}
    with pytest.raises(ValueError, match="ours must be a finite number"):
        results.cell(math.nan)
    with pytest.raises(ValueError, match="paper must be a finite number"):
        results.cell(0.1, "7%")


@pytest.mark.parametrize("name", ["Table1", "../x", "", "a b"])
def test_bad_names(name):
    with pytest.raises(ValueError, match="name must match"):
        results.path(name)


def test_missing_file_says_how_to_make_it():
    with pytest.raises(FileNotFoundError, match="python -m intriguing reproduce table9"):
        results.read("table9")


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "x.json"
    files.atomic_write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        files.atomic_write_json(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temp file left behind


def test_other_scales_never_overwrite_book_results(tmp_path):
    rows = [{"model": "m", "x": results.cell(1.0)}]
    book = results.write("table1", rows, scale="book", seconds=1)
    smoke = results.write("table1", [{"model": "m", "x": results.cell(0.5)}], scale="smoke",
                          seconds=1)
    assert book != smoke and smoke.parent.name == "smoke"
    assert results.read("table1", "book")["rows"] == rows
    assert results.read("table1", "smoke")["rows"][0]["x"]["ours"] == 0.5
