from models.db import make_engine, make_sessionmaker, normalize_url
from models.states import JobStatus, MessageStatus, SessionStatus
from models.tables import (
    ApiKey, Base, IdempotencyKey, IncomingMessage, Job, Message, OptOut, SessionTransition, WebhookDelivery,
    WhatsAppSession, new_id, seed_timestamp, utcnow,
)
from models.webhooks import DeliveryStatus, enqueue_webhook

__all__ = [
    "ApiKey", "Base", "DeliveryStatus", "IdempotencyKey", "IncomingMessage", "Job", "JobStatus", "Message",
    "MessageStatus", "OptOut", "SessionStatus", "SessionTransition", "WebhookDelivery", "WhatsAppSession",
    "enqueue_webhook", "make_engine", "make_sessionmaker", "new_id", "normalize_url", "seed_timestamp", "utcnow",
]
