"""Helpers of dispatch_bench.sh (run by hand; see docs/BENCHMARKS.md).

  dispatch_bench.py prepare DB KEYFILE N    queue N SMS messages as outbox_enqueue does
  dispatch_bench.py receive PORTFILE SECRET STATSFILE
                                            an SMS gateway on loopback: checks each body's
                                            HMAC-SHA256 signature, answers 200 with an id;
                                            writes its counts to STATSFILE on SIGTERM

The receiver is asyncio with keep-alive, so it is not the bottleneck of
what is measured: the dispatcher's claims, renders, signatures, requests
and durable records."""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import sqlite3
import sys
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def prepare(db, keyfile, n):
    keys = {}
    with open(keyfile, encoding="utf-8") as f:
        for line in f:
            p = line.split()
            if len(p) == 2 and not line.startswith("#"):
                keys[p[0]] = base64.b64decode(p[1])
    kid = max((k for k in keys if k[0] == "k"), key=lambda k: int(k[1:]))
    aes = AESGCM(keys[kid])
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    rows = []
    for i in range(n):
        nonce = os.urandom(12)
        phone = "138%08d" % i
        enc = "enc:v1:%s:%s" % (kid, base64.b64encode(nonce + aes.encrypt(nonce, phone.encode(), b"outbox.recipient")).decode())
        num = "INV-2026-%06d" % (i + 1)
        payload = json.dumps({"template": "renewal_reminder", "invoice": num, "due_date": "2026-11-16", "amount": 12900 + i,
                              "stage": "reminder_5", "pay_link": "/pay/" + num})
        rows.append((now, "dunning.renewal_reminder", "sms", enc, payload, now, "bench:%d" % i))
    con = sqlite3.connect(db)
    con.executemany("INSERT INTO outbox (created_at, event, channel, customer_id, recipient_enc, payload, status, "
                    "next_attempt_at, dedupe_key) VALUES (?, ?, 'sms', NULL, ?, ?, 'pending', ?, ?)",
                    [(r[0], r[1], r[3], r[4], r[5], r[6]) for r in rows])
    con.commit()
    con.close()


class Stats:
    received = 0
    bad = 0
    first = None
    last = None


async def serve_conn(reader, writer, secret, st):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length, ts, sig = 0, b"", b""
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                k = k.strip().lower()
                if k == b"content-length":
                    length = int(v)
                elif k == b"x-bandbill-timestamp":
                    ts = v.strip()
                elif k == b"x-bandbill-signature":
                    sig = v.strip()
            body = await reader.readexactly(length)
            want = b"sha256=" + hmac.new(secret, ts + b"." + body, hashlib.sha256).hexdigest().encode()
            now = time.monotonic()
            st.first = st.first or now
            st.last = now
            if hmac.compare_digest(want, sig):
                st.received += 1
                out = b'{"message_id":"gw-%d","status":"accepted"}' % st.received
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(out), out))
            else:
                st.bad += 1
                out = b'{"error":"bad signature"}'
                writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(out), out))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def receive(portfile, secret, statsfile):
    st = Stats()

    async def main():
        server = await asyncio.start_server(lambda r, w: serve_conn(r, w, secret.encode(), st), "127.0.0.1", 0, backlog=512)
        with open(portfile + ".tmp", "w") as f:
            f.write(str(server.sockets[0].getsockname()[1]))
        os.rename(portfile + ".tmp", portfile)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        server.close()

    asyncio.run(main())
    with open(statsfile, "w") as f:
        json.dump({"received": st.received, "bad_signatures": st.bad,
                   "span_s": (st.last - st.first) if st.first else 0}, f)


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "receive":
        receive(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("usage: dispatch_bench.py prepare DB KEYFILE N | receive PORTFILE SECRET STATSFILE")
