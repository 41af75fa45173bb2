"""The canary: the slot's own driver against the real WhatsApp Web.

    make canary TO=919876543210            # or: python scripts/canary.py --to 919876543210

Needs a machine with a network and a phone to scan the QR drawn in the terminal. It
runs ``workers.slot_runtime.SlotRuntime`` (the code every slot worker runs) with an event sink
that prints instead of writing to Redis, so a broken selector shows here first.
``--url`` points it elsewhere (the test suite runs it against the simulator).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from browser.qr import qr_terminal  # noqa: E402
from messaging.events import MemoryBus  # noqa: E402
from models.phones import InvalidPhoneNumber, normalize_phone  # noqa: E402
from settings import Settings  # noqa: E402
from workers.slot_runtime import SlotRuntime  # noqa: E402

SESSION = "canary"


class PrintBus(MemoryBus):
    """The slot's events, printed as they come; ``wait`` blocks until one with a given status."""

    def on_event(self, event: dict) -> None:
        """Print what a person running the canary needs: the QR, the code, each state."""
        kind, status = event["type"], event.get("status")
        if kind == "session" and event.get("qr"):
            print(qr_terminal(event["qr"]), flush=True)
            print(f"QR payload: {event['qr']}", flush=True)
            print("Scan it: WhatsApp > Linked devices > Link a device", flush=True)
        elif event.get("pairing_code"):
            print(f"pairing code: {event['pairing_code']}", flush=True)
        elif kind == "session":
            print(f"session: {status} {event.get('reason') or ''} {event.get('phone_number') or ''}", flush=True)
        elif kind == "message":
            print(f"message {event['message_id']}: {status}", flush=True)
        elif kind == "session_backup":
            print(f"login saved: {event['key']}", flush=True)
        else:
            print(f"{kind}: {status}", flush=True)

    def wait(self, statuses: set[str], timeout: float) -> dict | None:
        """The first event whose status is one of ``statuses``, waiting up to ``timeout`` s."""
        return self.wait_for(lambda e: e.get("status") in statuses, timeout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to", required=True, help="the number that gets one message")
    parser.add_argument("--text", default="Canary from the WhatsApp Web backend")
    parser.add_argument("--url", default="https://web.whatsapp.com/")
    parser.add_argument("--login-timeout", type=float, default=300.0)
    parser.add_argument("--ack-timeout", type=float, default=60.0)
    args = parser.parse_args()
    try:
        to = normalize_phone(args.to, Settings.from_env().default_region)
    except InvalidPhoneNumber as exc:
        parser.error(str(exc))

    settings = replace(Settings.from_env(), wa_web_url=args.url, slot_name="canary")
    bus = PrintBus()
    rt = SlotRuntime(settings, bus=bus)
    rt.start(heartbeat=False)
    try:
        rt.initialize(SESSION, 1)
        state = bus.wait({"READY", "DISCONNECTED"}, args.login_timeout)
        if state is None or state["status"] != "READY":
            print(f"not linked: {state}", file=sys.stderr)
            return 1
        started = time.monotonic()
        wa_id = rt.deliver(SESSION, 1, "canary-message", to, args.text)
        print(f"sent as {wa_id} in {time.monotonic() - started:.2f} s", flush=True)
        rt.watch_acks(SESSION, wa_id, "canary-message", "canary-job", to)
        ack = bus.wait({"read"}, args.ack_timeout) or bus.wait({"delivered"}, 0)
        print(f"last ack: {ack['status'] if ack else 'none (sent only)'}", flush=True)
        return 0
    finally:
        rt.shutdown()  # saves the login to PROFILE_DIR: the next run needs no QR


if __name__ == "__main__":
    sys.exit(main())
