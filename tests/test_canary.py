"""The canary script, pointed at the simulator instead of web.whatsapp.com: the same
driver links by QR, sends one message and follows its acks."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import requests

from tests.helpers import ROOT, Proc, free_port, port_open, wait_until


def test_canary_links_and_sends_one_message(tmp_path, redis_url):
    port = free_port()
    sim = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SIM_SYNC_DELAY": "0.2", "SIM_BOOT_SECONDS": "0.3", "SIM_DELIVER_DELAY": "0.2",
           "SIM_READ_DELAY": "0.2", "BROWSER_WORK_DIR": str(tmp_path / "browsers"),
           "PROFILE_DIR": str(tmp_path / "profiles"), "REDIS_URL": redis_url}
    simulator = Proc("simulator", ["-m", "simulator", "--port", str(port), "--quiet"], env, tmp_path).start()
    try:
        wait_until(lambda: port_open(port), 20, what="simulator")
        canary = subprocess.Popen(
            [sys.executable, "scripts/canary.py", "--to", "+91 98765 43210", "--text", "canary here",
             "--url", sim + "/", "--login-timeout", "60", "--ack-timeout", "20"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []

        def read():
            for line in canary.stdout:
                lines.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        payload = wait_until(lambda: next((ln.split(": ", 1)[1].strip() for ln in lines
                                           if ln.startswith("QR payload: ")), None), 60, what="a QR")
        assert any("\u2588" in ln or "\u2580" in ln or "\u2584" in ln for ln in lines), "QR drawn in the terminal"
        assert requests.post(f"{sim}/sim/phone/scan", json={"payload": payload, "phone": "919800000009"}, timeout=5).ok
        assert canary.wait(90) == 0, "".join(lines)
        reader.join(5)
        output = "".join(lines)
        assert "sent as true_919876543210@c.us_3EB0" in output and "last ack: read" in output, output
        sent = requests.get(f"{sim}/sim/control/messages", timeout=5).json()
        assert [m["text"] for m in sent] == ["canary here"]
    finally:
        simulator.stop()
