"""``python -m flagsync``: see flagsync.cli."""

import sys

from .cli import main

sys.exit(main())
