"""``python -m intriguing``: see ``intriguing.plumbing.cli``."""

from .plumbing.cli import main

raise SystemExit(main())
