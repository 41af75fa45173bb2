"""Sessions that survive: two slot workers on two "hosts" (each its own name and its own
disk) sharing PostgreSQL, Redis and an S3 bucket (moto's server on loopback). A slot
killed with SIGKILL loses its READY session to the other slot, restored from S3 without a
QR; restart and recovery bring sessions back the same way."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess

import pytest
import requests
from sqlalchemy import select

from browser.qr import read_qr_data_url
from messaging import slots
from tests.helpers import ROOT, Proc, free_port, port_open, s3_server, wait_until
from tests.stack import empty_world, link_session, network_log

FAST = {"min_gap_seconds": 0.3, "max_gap_seconds": 0.5, "hourly_cap": 1000, "daily_cap": 0}


@pytest.fixture(scope="module")
def s3():
    with s3_server() as url:
        yield url


@pytest.fixture(scope="module")
def cluster(settings, tmp_path_factory, redis_client, s3):
    empty_world(settings.database_url)
    logs = tmp_path_factory.mktemp("cluster")
    sim_port = free_port()
    tag = secrets.token_hex(3)
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
        "WA_WEB_URL": f"http://127.0.0.1:{sim_port}/", "SLOT_CAPACITY": "4", "LOG_LEVEL": "INFO",
        "SIM_SYNC_DELAY": "0.3", "SIM_BOOT_SECONDS": "0.3", "SIM_DELIVER_DELAY": "0.3", "SIM_READ_DELAY": "0.3", "DISPATCH_GRACE_SECONDS": "3",
        "S3_BUCKET": f"wa-test-{tag}", "S3_ENDPOINT_URL": s3, "S3_CREATE_BUCKET": "true", "S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true",
        "SLOT_HEARTBEAT_TTL": "6", "SEND_TIMEOUT": "8",
    }
    names = [f"fo-a-{tag}", f"fo-b-{tag}"]
    procs = {
        "simulator": Proc("simulator", ["-m", "simulator", "--port", str(sim_port)], env, logs),
        "recorder": Proc("recorder", ["-m", "workers.recorder"], env, logs),
        "control": Proc("control", ["-m", "celery", "-A", "workers.app", "worker", "--queues", "control", "--pool",
                                    "solo", "--beat", "--schedule", str(logs / "beat"), "--hostname",
                                    f"control-{tag}@%h", "--without-gossip", "--without-mingle"], env, logs),
    }
    for i, name in enumerate(names):  # two hosts: their own host name and their own disk
        procs[name] = Proc(name, ["-m", "workers.slot"], {
            **env, "SLOT_NAME": name, "SLOT_HOST": f"host-{'ab'[i]}",
            "BROWSER_WORK_DIR": str(logs / f"host-{'ab'[i]}" / "browsers"),
            "PROFILE_DIR": str(logs / f"host-{'ab'[i]}" / "unused-local-store")}, logs)
    for p in procs.values():
        p.start()
    try:
        wait_until(lambda: port_open(sim_port), 20, what="simulator")
        wait_until(lambda: {s.name for s in slots.live_slots(redis_client)} >= set(names), 60, what="both slots")
        yield {"sim": f"http://127.0.0.1:{sim_port}", "slots": names, "procs": procs, "env": env}
    finally:
        for p in reversed(list(procs.values())):
            p.stop()
        subprocess.run(["pkill", "-f", "wa-owner=fo-"], check=False)
        for p in procs.values():
            print(f"---- {p.name} log tail ----\n{p.tail(25)}")


def status(client, session: str) -> dict:
    return client.get(f"/webjs/sessions/{session}/status").json


def history(db, session: str) -> list[str]:
    from models import SessionTransition

    with db() as s:
        return [f"{t}/{r}" if r else t for t, r in s.execute(
            select(SessionTransition.to_status, SessionTransition.reason)
            .where(SessionTransition.session_id == session).order_by(SessionTransition.id)).all()]


def linked(client, cluster) -> tuple[str, str]:
    session, phone = f"fo_{secrets.token_hex(4)}", f"9196{secrets.randbelow(10**8):08d}"
    link_session(client, cluster["sim"], session, phone, pacing=FAST)
    # Backed up to S3 a few seconds after READY.
    wait_until(lambda: status(client, session)["s3_session_key"], 30, what="the first backup")
    return session, phone


def test_a_killed_slots_session_is_ready_on_the_other_slot_without_a_qr(client, cluster, db, redis_client):
    session, phone = linked(client, cluster)
    first = status(client, session)
    victim = cluster["procs"][first["slot"]]
    victim.stop(signal.SIGKILL)  # the worker's whole group; its Chrome lives on, orphaned
    r = client.post(f"/webjs/sessions/{session}/send-message", json={"to": "919876512345", "message": "meanwhile"})
    assert r.status_code == 202
    again = wait_until(lambda: (s := status(client, session))["status"] == "READY" and s["slot"] != first["slot"] and s,
                       60, what="READY on the other slot")
    log = history(db, session)
    after = log[log.index("DISCONNECTED/WORKER_LOST"):]
    assert "QR_READY" not in " ".join(after), log
    assert again["phone_number"] == phone
    wait_until(lambda: [m for m in network_log(cluster["sim"]) if m["text"] == "meanwhile"], 30, what="the message")
    assert len([m for m in network_log(cluster["sim"]) if m["text"] == "meanwhile"]) == 1
    victim.start()  # back for the next tests; it kills its orphaned Chrome first
    wait_until(lambda: first["slot"] in {s.name for s in slots.live_slots(redis_client)}, 60)


def test_restart_comes_back_without_a_qr(client, cluster, db):
    session, _ = linked(client, cluster)
    r = client.post(f"/webjs/sessions/{session}/restart")
    assert r.status_code == 200, r.json
    wait_until(lambda: history(db, session)[-1] == "READY" and "INITIALIZING/RESTART" in history(db, session), 60)
    log = history(db, session)
    assert "QR_READY" not in " ".join(log[log.index("INITIALIZING/RESTART"):]), log


def test_recovery_restores_from_s3_or_shows_a_qr(client, cluster, db, redis_client):
    kept, _ = linked(client, cluster)
    revoked, revoked_phone = linked(client, cluster)
    from messaging import dispatch

    for session in (kept, revoked):  # both browsers stop cleanly; their logins are saved
        dispatch.stop_session(client.application.extensions["wa"].celery, slot=status(client, session)["slot"],
                              session_id=session, epoch=2**62, forget=False)
    wait_until(lambda: not any(x in s.sessions for s in slots.live_slots(redis_client) for x in (kept, revoked)),
               30, what="both browsers stopped")
    requests.post(f"{cluster['sim']}/sim/phone/logout", json={"phone": revoked_phone}, timeout=5)
    from models import WhatsAppSession

    with db.begin() as s:  # as after a redeploy that lost the browsers
        for row in s.execute(select(WhatsAppSession).where(WhatsAppSession.session_id.in_([kept, revoked]))).scalars():
            row.status, row.status_reason = "DISCONNECTED", "REDEPLOY"
    r = client.post("/webjs/recovery/auth")
    assert r.status_code == 200, r.json
    body = r.json
    by_id = {x["sessionId"]: x for x in body["results"]}
    assert by_id[kept]["recoveryMethod"] == "S3_RESTORED" and by_id[kept]["success"] is True
    assert by_id[revoked]["recoveryMethod"] == "QR_REGENERATED" and by_id[revoked]["requiresQRScan"] is True
    assert body["s3Restored"] >= 1 and body["qrRegenerated"] >= 1 and body["totalSessions"] >= 2
    assert body["duration"].endswith("seconds")
    wait_until(lambda: status(client, kept)["status"] == "READY", 30)
    qr = client.get(f"/webjs/sessions/{revoked}/qr").json["qr_code"]
    assert read_qr_data_url(qr)


def test_delete_removes_every_archive(client, cluster):
    import boto3

    session, _ = linked(client, cluster)
    env = cluster["env"]
    s3 = boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")

    def objects():
        listed = s3.list_objects_v2(Bucket=env["S3_BUCKET"], Prefix=f"wa-profiles/{session}/")
        return [o["Key"] for o in listed.get("Contents", [])]

    assert objects()
    assert client.delete(f"/webjs/sessions/{session}").status_code == 200
    wait_until(lambda: not objects(), 30, what="every object of the session deleted")
