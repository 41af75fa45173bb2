from models.db import make_engine, make_sessionmaker, normalize_url
from models.states import JobStatus, MessageStatus, SessionStatus
from models.tables import ApiKey, Base, Job, Message, SessionTransition, WhatsAppSession, new_id, utcnow

__all__ = [
    "ApiKey", "Base", "Job", "JobStatus", "Message", "MessageStatus", "SessionStatus",
    "SessionTransition", "WhatsAppSession", "make_engine", "make_sessionmaker", "new_id",
    "normalize_url", "utcnow",
]
