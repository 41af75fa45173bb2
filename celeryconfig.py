"""Celery settings, read by every worker, beat and the API's producer.

Sends must not be lost: tasks are acknowledged after they ran (acks_late), a worker
takes one task at a time (prefetch 1), and a task from a worker that died is delivered
again (reject_on_worker_lost) once the visibility timeout, longer than any task, passes.

A Redis outage is ridden out: workers reconnect to the broker with backoff (2 s more
per attempt, at most 30 s apart) for as long as it takes, on a transport that survives
the loss (``messaging.broker``); a task running meanwhile is not cancelled (every task
here may run twice).

What depends on the settings (the broker's address, its transport and visibility timeout)
is set by ``messaging.celery_app.make_celery(settings)``: this module reads nothing.
"""
from settings import CONTROL_QUEUE

broker_connection_retry_on_startup = True
broker_connection_retry = True
broker_connection_max_retries = None  # reconnect for as long as Redis is away
worker_cancel_long_running_tasks_on_connection_loss = False

task_serializer = "json"
accept_content = ["json"]
result_backend = None
task_ignore_result = True
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_default_queue = CONTROL_QUEUE
task_routes = {"wa.control.*": {"queue": CONTROL_QUEUE}, "wa.api.*": {"queue": CONTROL_QUEUE}}
timezone = "UTC"
enable_utc = True

# Flower shows tasks from these events.
worker_send_task_events = True
# task-sent events would double the Redis work of every enqueue; Flower shows tasks from "received" on.
task_send_sent_event = False

beat_schedule = {
    # Also how soon the next message to the same number follows the one before it.
    "sweep-undispatched-messages": {"task": "wa.control.sweep_messages", "schedule": 5.0,
                                    "options": {"expires": 30.0}},
    "expire-idempotency-keys": {"task": "wa.control.expire_idempotency_keys", "schedule": 3600.0},
    "expire-media": {"task": "wa.control.expire_media", "schedule": 3600.0},
    # Orphan browsers, sessions stuck logging in, idle sessions (IDLE_TIMEOUT_MINUTES).
    "clean-sessions": {"task": "wa.control.clean_sessions", "schedule": 300.0},
    "reap-lost-slots": {"task": "wa.control.reap_lost_slots", "schedule": 10.0},
    # Runs that waited past the next few are dropped rather than piling up behind a busy worker.
    "deliver-webhooks": {"task": "wa.control.deliver_webhooks", "schedule": 2.0, "options": {"expires": 10.0}},
}
