"""Issue 6 (the part without the agent): the status engine end to end with a real worker and beat.

With ``REDIS_URL`` and ``DATABASE_URL`` set (CI) it runs on Redis and on a dedicated PostgreSQL database created
for the test (``arcportal_it_<random>``, dropped at teardown); without them on the embedded broker and a SQLite
file, so it always runs. Heartbeats go through ``machine_record_heartbeat`` (the driver subprocess); transitions
must reach a webhook receiver on 127.0.0.1 with valid signatures.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta

import pytest

from machines.webhooks import webhook_signature_valid
from tests.integration.conftest import BEAT, WORKER, wait_until

pytestmark = pytest.mark.integration

OFFLINE_SECONDS = 6
HEARTBEAT_SECONDS = 2
SWEEP_SECONDS = 1
# Beyond "threshold + 2 sweeps": broker pickup (the filesystem transport polls once a second) and our polling.
SCHEDULING_SLACK_SECONDS = 4


def test_status_engine_end_to_end_with_a_real_worker_and_beat(make_installation, database_url, receiver, redis_cleanup):
    overrides = {
        "ARC_HEARTBEAT_INTERVAL_SECONDS": str(HEARTBEAT_SECONDS),
        "ARC_OFFLINE_AFTER_SECONDS": str(OFFLINE_SECONDS),
        "ARC_STATUS_SWEEP_SECONDS": str(SWEEP_SECONDS),
        "ARC_BEAT_LIVENESS_SECONDS": "5",
    }
    if os.environ.get("REDIS_URL"):
        overrides["REDIS_URL"] = os.environ["REDIS_URL"]
    if database_url:
        overrides["DATABASE_URL"] = database_url
    installation = make_installation(**overrides)
    redis_cleanup(installation)
    installation.manage("migrate", "--no-input")
    driver = installation.driver()
    seeded = driver("seed", name="srv-e2e", heartbeat_age=None, status="AwaitingConnection", webhook_url=receiver.url)
    machine_id = seeded["machine_id"]
    installation.start("worker", WORKER)
    installation.start("beat", BEAT)

    def state():
        return driver("state", machine_id=machine_id)

    try:
        # Heartbeats every 2 s: Connected from the first one on.
        first = driver("heartbeat", machine_id=machine_id)
        assert state()["status"] == "Connected"
        last = first
        for _ in range(2):
            time.sleep(HEARTBEAT_SECONDS)
            last = driver("heartbeat", machine_id=machine_id)
            assert state()["status"] == "Connected"
        last_at = datetime.fromisoformat(last["at"])

        # Heartbeats stop: the sweep records Disconnected at last heartbeat + 6 s, within threshold + 2 sweeps.
        offline = wait_until(
            lambda: (s := state())["status"] == "Disconnected" and s,
            timeout=OFFLINE_SECONDS + 30,
            interval=0.2,
            message="the machine never went Disconnected",
        )
        noticed_after = datetime.now(last_at.tzinfo) - last_at
        assert noticed_after <= timedelta(seconds=OFFLINE_SECONDS + 2 * SWEEP_SECONDS + SCHEDULING_SLACK_SECONDS), (
            noticed_after
        )
        assert offline["last_status_change"] == (last_at + timedelta(seconds=OFFLINE_SECONDS)).isoformat()

        # Heartbeats resume: Connected at once (the heartbeat records it, no sweep needed).
        resumed = driver("heartbeat", machine_id=machine_id)
        after = state()
        assert after["status"] == "Connected"
        assert after["last_status_change"] == resumed["at"]

        # The activity log holds every transition at its exact moment.
        assert after["events"] == [
            {"from": "AwaitingConnection", "to": "Connected", "at": first["at"], "reason": "Heartbeat"},
            {
                "from": "Connected",
                "to": "Disconnected",
                "at": (last_at + timedelta(seconds=OFFLINE_SECONDS)).isoformat(),
                "reason": "Status sweep",
            },
            {"from": "Disconnected", "to": "Connected", "at": resumed["at"], "reason": "Heartbeat"},
        ]

        # And the receiver got each of them, signed.
        wait_until(lambda: len(receiver.received) >= 3, timeout=30, message="webhook deliveries missing")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{installation.logs()}") from None

    changes = []
    for headers, body in receiver.received:
        assert webhook_signature_valid(
            secret=seeded["secret"],
            timestamp=headers["x-arcportal-timestamp"],
            body=body,
            signature=headers["x-arcportal-signature"],
        )
        data = json.loads(body)["data"]
        at = datetime.fromisoformat(data["statusChangedAt"].replace("Z", "+00:00"))
        changes.append((data["previousStatus"], data["status"], at))
    assert sorted(changes, key=lambda c: c[2]) == [
        ("AwaitingConnection", "Connected", datetime.fromisoformat(first["at"])),
        ("Connected", "Disconnected", last_at + timedelta(seconds=OFFLINE_SECONDS)),
        ("Disconnected", "Connected", datetime.fromisoformat(resumed["at"])),
    ]
