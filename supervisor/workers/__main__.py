"""``python -m supervisor.workers``: a room-worker process (started by the supervisor)."""

from __future__ import annotations

import sys

from supervisor.workers._worker import worker_main

sys.exit(worker_main())
