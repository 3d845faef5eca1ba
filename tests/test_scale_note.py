"""The scale note: a page run below book scale says which of its claims read otherwise at book
scale, computed from both scales' results files (issue 18 item 3)."""

import re

import pytest

from intriguing.display import claims as claims_display
from intriguing.display import scale_note
from intriguing.plumbing import claims, config, results

#: Two claims of blind_spots's results file "table1", as a summarize() would make them.
SENTENCES = {"reproduced": "Ours agree ({x:.2f}).", "differs": "Ours do not agree ({x:.2f})."}


def _write(name: str, scale: str, outcomes: dict[str, str], x: float) -> None:
    def summarize(doc):
        return {"summaries": {}, "claims": [
            claims.make(cid, paper="The paper's statement (section 4.3).", outcome=o,
                        text=SENTENCES, figures={"x": x}) for cid, o in outcomes.items()]}

    results.write(name, [], scale=scale, seconds=1.0, summarize=summarize)


@pytest.fixture
def data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(config.DATA_DIR_ENV, str(tmp_path))
    return tmp_path


def test_book_scale_says_nothing(data_dir):
    _write("table1", "book", {"a": "reproduced"}, 0.5)
    assert scale_note.note_text("table1", "noise", scale="book") is None
    assert scale_note.note("table1", scale="book") is None


def test_without_book_files_the_note_says_it_cannot_compare(data_dir):
    _write("table1", "smoke", {"a": "reproduced", "b": "differs"}, 0.5)
    text = scale_note.note_text("table1", "noise", scale="smoke")
    assert "ran at smoke scale" in text and config.SCALES["smoke"].describe() in text
    assert "table1" in text and "not on this machine" in text and "models install" in text
    assert "read otherwise:" not in text


def test_lists_exactly_the_claims_whose_outcome_differs(data_dir):
    _write("table1", "smoke", {"a": "reproduced", "b": "differs", "c": "differs"}, 0.25)
    _write("table1", "book", {"a": "reproduced", "b": "reproduced", "c": "differs"}, 0.75)
    cmp = scale_note.compare(["table1"], "smoke")
    assert [(r["id"], r["same"]) for r in cmp["rows"]] == [("a", True), ("b", False),
                                                            ("c", True)]
    text = scale_note.note_text("table1", "noise", scale="smoke")
    assert "Of the 3 claims that can be compared with book scale, 2 read the same and 1 read " \
           "otherwise:" in text
    bullets = [line for line in text.splitlines() if line.startswith("> - ")]
    assert len(bullets) == 1 and "`b`" in bullets[0]
    assert "Ours do not agree (0.25)." in bullets[0] and "Ours agree (0.75)." in bullets[0]


def test_a_claims_sentence_carries_its_book_reading_only_where_it_differs(data_dir):
    _write("table1", "smoke", {"a": "reproduced", "b": "differs"}, 0.25)
    smoke = results.read("table1", "smoke")
    # No book-scale file on this machine: the sentence alone.
    assert claims_display.text(smoke, "b", badges=False) == "Ours do not agree (0.25)."
    _write("table1", "book", {"a": "reproduced", "b": "reproduced"}, 0.75)
    a, b = claims_display.text(smoke, "a"), claims_display.text(smoke, "b", badges=False)
    assert "book scale" not in a
    assert re.fullmatch(r"Ours do not agree \(0\.25\)\. \*\(At book scale it reads otherwise: "
                        r"Ours agree \(0\.75\)\.\)\*", b)
    # At book scale the book's own sentences are printed unchanged.
    book = results.read("table1", "book")
    assert claims_display.text(book, "b", badges=False) == "Ours agree (0.75)."


def test_scorecard_comparison_counts_and_lists(data_dir):
    assert "not both on this machine" in scale_note.comparison_html("smoke", "book")
    _write("table1", "smoke", {"a": "reproduced", "b": "differs"}, 0.25)
    _write("table1", "book", {"a": "reproduced", "b": "reproduced"}, 0.75)
    out = scale_note.comparison_html("smoke", "book")
    assert out.startswith("<p>1 of 2 claims read the same at smoke scale as at book scale; "
                          "1 read otherwise:")
    assert out.count("<tr>") == 2 and "<code>b</code>" in out  # header row + one claim


def test_unknown_or_missing_file_names_are_refused(data_dir):
    with pytest.raises(ValueError, match=r"names must be one of \[.*'table1'.*got 'table9'"):
        scale_note.note_text("table1", "table9", scale="smoke")
    with pytest.raises(ValueError, match="names must list at least one results file"):
        scale_note.note(scale="smoke")


def test_every_scale_describes_itself():
    for sc in config.SCALES.values():
        words = sc.describe()
        assert "training images" in words and "attacked" in words
    assert config.SCALES["paper"].describe().endswith("every training image attacked for "
                                                      "Tables 1-2")


def test_every_chapter_notes_every_results_file_it_reads():
    """A chapter's scale note names exactly the files its cells read with ``results.read``."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for nb_path in sorted((root / "chapters").glob("*.ipynb")):
        cells = json.loads(nb_path.read_text(encoding="utf-8"))["cells"]
        sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        read = {m for s in sources for m in re.findall(r'results\.read\("([a-z0-9_]+)"', s)}
        notes = [s for s in sources if "scale_note.note(" in s]
        assert len(notes) == 1, nb_path.name
        noted = set(re.findall(r'"([a-z0-9_]+)"', notes[0].split("scale_note.note(")[1]))
        assert noted == read, nb_path.name
