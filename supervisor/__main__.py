"""``python -m supervisor`` runs the command line."""

from __future__ import annotations

import sys

from supervisor._cli import main

sys.exit(main())
