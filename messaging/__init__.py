"""Redis messaging shared by the API and the workers: the event stream and its channels
(``events``), the slot registry (``slots``), pacing, claims and the circuit breaker
(``pacing``), task signatures (``dispatch``), placing and recovering sessions
(``recovery``), the broker transport and the Celery app factory (``broker``, ``celery_app``).

Imports ``models`` and ``settings`` only, never ``api``, ``workers`` or ``services``.
"""
