"""A slot worker: one Celery worker that consumes only its own queue and owns the
Chrome of every session placed on it (its ``SlotRuntime``, ``workers.slot_runtime``,
built by ``workers.wiring.slot`` when the worker is ready).

Run: ``SLOT_NAME=slot-1 python -m workers.slot``
"""
from __future__ import annotations

import sys

from celery.signals import worker_init, worker_ready, worker_shutdown, worker_shutting_down

from logs import setup_logging
from workers import wiring
from workers.app import celery


def main() -> None:
    """Run the slot worker; the process exits with the worker's exit code (non-zero
    after an unrecoverable error, so a supervisor sees the failure)."""
    settings = celery.wa_settings  # read once, by workers.app
    setup_logging(settings.log_level, settings.log_format)
    worker_ready.connect(lambda **_: wiring.slot(celery), weak=False)
    # Sent as the stop signal arrives: chromedriver gets the same signal, so the monitor
    # must stop probing now or it would report the browsers as crashed.
    worker_shutting_down.connect(lambda **_: (rt := wiring.running_slot(celery)) and rt.stopping(), weak=False)
    worker_shutdown.connect(lambda **_: (rt := wiring.running_slot(celery)) and rt.shutdown(), weak=False)
    workers = []  # the WorkController, whose exit code worker_main() does not pass on
    worker_init.connect(lambda sender, **_: workers.append(sender), weak=False)
    celery.worker_main([
        "worker", "--pool=solo", "--concurrency=1", f"--queues={settings.slot_queue}",
        f"--hostname={settings.slot_name}@%h", f"--loglevel={settings.log_level}", "--without-gossip",
        "--without-mingle",
    ])
    sys.exit(workers[0].exitcode if workers else 1)


if __name__ == "__main__":
    main()
