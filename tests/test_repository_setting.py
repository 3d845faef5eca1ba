"""The book's repository address is one setting (issue 18): ``repository.url`` in _config.yml."""

from __future__ import annotations

import sys

import yaml

from intriguing.plumbing import config

ROOT = config.repo_root()
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import repository_setting as rs  # noqa: E402


def test_an_address_reaches_the_pages_and_keeps_the_buttons():
    url = "https://example.org/intriguing"
    opts, subs = rs.repository_options(
        {"repository_url": url, "launch_buttons": {"binderhub_url": "https://mybinder.org"}},
        {"other": "x"})
    assert subs == {"other": "x", "repo_url": url}
    assert opts["launch_buttons"] == {"binderhub_url": "https://mybinder.org"}
    assert "use_repository_button" not in opts


def test_no_address_means_no_buttons_and_an_honest_sentence():
    opts, subs = rs.repository_options(
        {"repository_url": "  ", "launch_buttons": {"colab_url": "https://colab"}}, None)
    assert opts["launch_buttons"] == {} and opts["use_repository_button"] is False
    assert subs["repo_url"] == rs.UNSET


def test_the_config_names_the_address_once_and_loads_the_extension():
    text = (ROOT / "_config.yml").read_text(encoding="utf-8")
    cfg = yaml.safe_load(text)
    assert "repo_url" not in cfg["parse"].get("myst_substitutions", {})
    assert cfg["sphinx"]["local_extensions"] == {"repository_setting": "book/_ext"}
    assert text.count("github.com/") == 0 or cfg["repository"]["url"] in text
