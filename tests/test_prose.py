"""No typed result: the pages' prose states the paper's claims, method and reasoning only.

A sentence that reports one of our results (a measured number, or a comparison of our numbers)
must be a claim computed from ``data/results`` (``intriguing.display.claims``). This test reads
the Markdown of every chapter and front-matter page and flags sentences that look like typed
results: a decimal or a percentage, or a comparison word in a sentence about our own runs. A
sentence about the paper's figures (naming the paper, and not us) passes; so does the short,
explicit allow-list below, each entry with its reason.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([*ROOT.glob("chapters/*.ipynb"), *ROOT.glob("book/*.ipynb"),
                *ROOT.glob("book/*.md")])

#: Numbers that report a measurement: decimals and percentages (integers such as "10,000 test
#: images" or "28x28" describe the set-up).
NUMBER = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])|\d+(\.\d+)?\s*%")
#: Comparison words (the issue's list: "A transfers more than B", "improves", "near total").
COMPARISON = re.compile(
    r"\b(more|less|fewer|larger|smaller|higher|lower|most|least|better|worse|improv\w*|"
    r"near(ly)? total|far|exceed\w*|outperform\w*|beats?)\b", re.I)
#: Words that make a sentence about our own results.
OURS = re.compile(r"\b(our|ours|we|us|this book|this run|here|measured|the table above|"
                  r"the figure above)\b", re.I)
#: Words that make a sentence about the paper.
PAPER = re.compile(r"\b(the paper|paper's|Szegedy|section \d|Table \d|Fig\. \d)", re.I)

#: Sentences (by their start) that pass although they match, with the reason. Keep it short.
ALLOWED: dict[str, str] = {
    "Twenty-four tests at the 5% level would flag about one difference by chance":
        "random_directions: the Holm correction's rationale; 5% is the test level (method).",
}


def _markdown(page: Path) -> str:
    if page.suffix == ".ipynb":
        cells = json.loads(page.read_text())["cells"]
        return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return page.read_text()


def _strip(text: str) -> str:
    """Prose only: no code blocks, inline code, math, roles, directives' options or links."""
    text = re.sub(r"^(```|````).*?^\1\s*$", "", text, flags=re.S | re.M)  # fenced blocks' bodies
    text = re.sub(r"^:::.*?^:::\s*$", lambda m: m.group(0), text, flags=re.S | re.M)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", " ", text)
    text = re.sub(r"\{[a-z:-]+\}`[^`]*`", " ", text)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"^:[a-z-]+:.*$", " ", text, flags=re.M)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return text


def sentences(text: str) -> list[str]:
    text = _strip(text)
    return [" ".join(s.split()) for s in re.split(r"(?<=[.!?])\s+|\n\s*\n|\n(?=\s*[-*|#] )",
                                                  text) if s.strip()]


#: Numbers that name a method's setting or a version, not a result ("a 95% interval", "the 5%
#: level", "Python 3.11", "the paper's stddev 0.1").
SETTING = re.compile(r"\d+(\.\d+)?\s*%\s+(bootstrap\s+)?(interval|level|confidence|quantile)|"
                     r"\b(Python|torch|Node\.js|version)\s+\d+(\.\d+)+|"
                     r"\bstddev[ =]\d+(\.\d+)?", re.I)


def typed_results(text: str) -> list[str]:
    """The sentences of ``text`` that look like typed results (see the module docstring)."""
    out = []
    for s in sentences(text):
        s_num = SETTING.sub(" ", s)
        if any(s.startswith(start) for start in ALLOWED):
            continue
        about_paper = PAPER.search(s) and not OURS.search(s)
        number = NUMBER.search(s_num) and not about_paper
        comparison = COMPARISON.search(s) and OURS.search(s)
        if number or comparison:
            out.append(s)
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_typed_result(page):
    found = typed_results(_markdown(page))
    assert found == [], (f"{page.relative_to(ROOT)} types results in prose; make each a claim "
                         "computed from data/results (or state it as the paper's):\n  "
                         + "\n  ".join(found))


@pytest.mark.parametrize("sentence", [
    "Our distortions are 0.59 to 0.94 times the paper's.",
    "FC200-200-10 still classifies 23.5% of the images correctly.",
    "Our sets fool the other models far more than noise does.",
    "Adversarial training improved robustness in our run.",
    "Measured here, the nonlinear block transfers least.",
])
def test_the_scan_flags_typed_results(sentence):
    assert typed_results(sentence) == [sentence]


@pytest.mark.parametrize("sentence", [
    "The paper reports 51% under noise of standard deviation 1 (its Figure 7).",
    "The paper's Table 1 orders the linear models: heavier weight decay, larger perturbations.",
    "A larger $c$ means a smaller perturbation that may fail.",
    "Every attack in this book uses the same seeded draw, `advsets.random_targets`.",
    "MNIST has 60,000 training and 10,000 test images.",
])
def test_the_scan_passes_method_and_the_papers_figures(sentence):
    assert typed_results(sentence) == []
