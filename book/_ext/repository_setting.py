"""One setting for the book's repository: ``repository.url`` in ``_config.yml``.

Why: the launch buttons (Binder, Colab) and the pages that name the repository must agree, and
a book whose repository is not public yet must show no button that leads nowhere. Jupyter Book
1.x turns ``repository.url`` into the theme's ``repository_url``; this Sphinx extension, run
when the configuration is read, gives the same address to the pages as the MyST substitution
``{{ repo_url }}`` and, when the address is empty, removes the launch and repository buttons.
"""

from __future__ import annotations

from typing import Any

#: What ``{{ repo_url }}`` says when ``repository.url`` is empty.
UNSET = "the address is not published yet"


def repository_options(theme_options: dict[str, Any] | None,
                       substitutions: dict[str, Any] | None) -> tuple[dict, dict]:
    """The theme options and MyST substitutions for the repository address in ``theme_options``.

    Returns new dicts: ``substitutions["repo_url"]`` is the address (or :data:`UNSET`); with no
    address, ``launch_buttons`` is emptied and the repository, issues and edit buttons are off.
    """
    options = dict(theme_options or {})
    subs = dict(substitutions or {})
    url = str(options.get("repository_url") or "").strip()
    subs["repo_url"] = url or UNSET
    if not url:
        options["launch_buttons"] = {}
        for key in ("use_repository_button", "use_issues_button", "use_edit_page_button",
                    "use_source_button"):
            options[key] = False
    return options, subs


def _apply(app: Any, config: Any) -> None:
    config.html_theme_options, config.myst_substitutions = repository_options(
        config.html_theme_options, config.myst_substitutions)


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", _apply)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
