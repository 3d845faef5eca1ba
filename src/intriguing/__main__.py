"""``python -m intriguing``: see ``intriguing.cli``."""

from .cli import main

raise SystemExit(main())
