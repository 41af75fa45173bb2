"""What WhatsApp Web does with a file, decided once for the API (validation) and the slot
(which input gets the file): photos and videos go through its "Photos & videos" input,
whose ``accept`` is ``image/*,video/mp4,video/3gpp,video/quicktime`` (docs/whatsapp-web.md),
and have the media limit; everything else goes as a document, with the document limit."""
from __future__ import annotations

MB = 1024 * 1024
MEDIA_VIDEO_TYPES = ("video/mp4", "video/3gpp", "video/quicktime")


def kind_of(mimetype: str) -> str:
    """"media" (photos and videos) or "document"."""
    return "media" if mimetype.startswith("image/") or mimetype in MEDIA_VIDEO_TYPES else "document"


def limit_bytes(kind: str, *, media_max_mb: float, document_max_mb: float) -> int:
    """The size limit of a file of ``kind`` ("media" or "document"), in bytes."""
    return int((media_max_mb if kind == "media" else document_max_mb) * MB)
