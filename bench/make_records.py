#!/usr/bin/env python3
"""Writes N synthetic call records (JSON Lines, the engine's schema) spread
over DAYS days into DIR/<date>.jsonl, for timing `hotline report` and
`hotline plan` on a month of data.

    bench/make_records.py DIR [N] [DAYS]
"""
import json, os, random, sys
from datetime import datetime, timedelta, timezone

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
days = int(sys.argv[3]) if len(sys.argv) > 3 else 30
rng = random.Random(7)
os.makedirs(out, exist_ok=True)
start = datetime(2026, 10, 1, tzinfo=timezone.utc)
ts = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
files = {}
for i in range(n):
    invite = start + timedelta(seconds=rng.uniform(0, days * 86400))
    answered = invite + timedelta(milliseconds=rng.randint(200, 3000))
    queue = rng.choice(["consultation", "repair", "complaint"])
    queued = answered + timedelta(milliseconds=rng.randint(3000, 20000))
    wait = rng.randint(0, 120_000)
    result = rng.choices(["answered", "abandoned", "timeout"], [85, 12, 3])[0]
    talk = rng.randint(20_000, 400_000) if result == "answered" else None
    end = queued + timedelta(milliseconds=wait + (talk or 0))
    rec = {
        "version": 1, "call_id": f"hl-{i}", "sip_call_id": f"{i}@bench",
        "caller_number": str(13800000000 + rng.randint(0, 99999)), "caller_name": None,
        "dialled_number": "4008", "source": "udp:10.0.0.1:5060",
        "invite_at": ts(invite), "ringing_at": ts(invite), "answered_at": ts(answered),
        "media_start_at": ts(answered), "media_end_at": ts(end), "ended_at": ts(end),
        "time_to_answer_ms": int((answered - invite).total_seconds() * 1000),
        "duration_ms": int((end - answered).total_seconds() * 1000),
        "disposition": "answered", "outcome": "caller_hangup", "hangup_side": "caller",
        "sip_status": 200, "codec": "PCMU", "digits": "1", "caller_spoke": True,
        "queue": queue, "queued_at": ts(queued), "wait_ms": wait,
        "queue_result": result, "business_type": queue,
        "customer_class": rng.choice(["group", "business", "public"]),
    }
    if result == "answered":
        bridged = queued + timedelta(milliseconds=wait)
        rec.update(bridged_at=ts(bridged), agent_answered_at=ts(bridged), talk_ms=talk,
                   wrap_up_ms=30_000, agent=str(1001 + rng.randint(0, 39)), offers=1)
    name = ts(end)[:10] + ".jsonl"
    f = files.get(name) or files.setdefault(name, open(os.path.join(out, name), "a"))
    f.write(json.dumps(rec) + "\n")
for f in files.values():
    f.close()
