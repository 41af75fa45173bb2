"""/webjs/jobs/{id}: what became of a send."""
from __future__ import annotations

import logging

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from api.schemas import CancelResultSchema, JobSchema
from api.sessions import current_scope, services
from messaging.pacing import Claims
from models import Job, Message, MessageStatus, utcnow
from models.recording import change_message_status
from models.states import MESSAGE_SUCCESS, MESSAGE_UNSENT, MESSAGE_WAITING, JobStatus

log = logging.getLogger("api.jobs")
blp = Blueprint("jobs", __name__, url_prefix="/webjs/jobs", description="Send jobs")


def _seed_status(status: str) -> str:
    if status in MESSAGE_SUCCESS:
        return "success"
    if status in (MessageStatus.FAILED, MessageStatus.CANCELLED):
        return "failed" if status == MessageStatus.FAILED else "cancelled"
    return "pending"


def job_view(job: Job) -> dict:
    """A job and its messages in the seed's shape (JobSchema): per-message results with the
    seed's status (success, failed, pending) and ours, and the counts."""
    results = []
    for m in job.messages:
        results.append({
            "message_id": m.id, "to": m.to_input, "status": _seed_status(m.status), "message_status": m.status,
            "whatsapp_message_id": m.wa_message_id, "wa_id": m.wa_id, "error": m.error, "attempts": m.attempts,
            "timestamp": m.sent_at or m.failed_at or m.updated_at,
            "next_attempt_at": m.next_attempt_at, "wait_reason": m.wait_reason,
        })
    ok = sum(r["status"] == "success" for r in results)
    failed = sum(r["status"] == "failed" for r in results)
    end = job.finished_at or utcnow()
    return {
        "job_id": job.id, "session_id": job.session_id, "kind": job.kind, "status": job.status,
        "success": job.status != JobStatus.FAILED, "total_messages": len(results),
        "successful_sends": ok, "failed_sends": failed,
        "pending": sum(r["status"] == "pending" for r in results), "results": results,
        "created_at": job.created_at, "finished_at": job.finished_at,
        "duration": f"{(end - job.created_at).total_seconds():.1f} seconds",
    }


@blp.route("/<job_id>")
class JobItem(MethodView):
    """GET /webjs/jobs/{job_id}."""

    @blp.response(200, JobSchema)
    def get(self, job_id):
        """A job and each of its messages."""
        with services().db() as s:
            job = s.execute(select(Job).where(Job.id == job_id, current_scope().jobs())
                            .options(selectinload(Job.messages))).scalar_one_or_none()
            if job is None:
                abort(404, message="Job not found")
            return job_view(job)


@blp.route("/<job_id>/cancel")
class JobCancel(MethodView):
    """POST /webjs/jobs/{job_id}/cancel."""

    @blp.response(200, CancelResultSchema)
    def post(self, job_id):
        """Cancel the job's messages that are not sent yet (queued or scheduled).

        A message a worker is sending right now cannot be cancelled any more; it is
        counted in not_cancelled.
        """
        svc = services()
        claims = Claims(svc.redis)
        cancelled = 0
        with svc.db.begin() as s:
            job = s.execute(select(Job).where(Job.id == job_id, current_scope().jobs())
                            .with_for_update()).scalar_one_or_none()
            if job is None:
                abort(404, message="Job not found")
            rows = s.execute(select(Message).where(Message.job_id == job_id).order_by(Message.position)
                             .with_for_update()).scalars().all()
            for msg in rows:
                # The claim decides between this cancel and a worker about to send it.
                if MessageStatus(msg.status) in MESSAGE_WAITING and claims.cancel(msg.id):
                    change_message_status(s, msg, MessageStatus.CANCELLED, error="Cancelled")
                    cancelled += 1
            s.flush()
            unsent = sum(1 for m in rows if MessageStatus(m.status) in MESSAGE_UNSENT)
            status = job.status
        log.info("job=%s cancelled %d messages", job_id, cancelled)
        return {"job_id": job_id, "cancelled": cancelled, "not_cancelled": unsent, "status": status}
