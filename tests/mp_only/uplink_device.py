"""MicroPython: fill a journal and forward it to a broker with umqtt.simple.

    micropython tests/mp_only/uplink_device.py PORT JOURNAL KEYHEX COUNT [PID_START] [ca=FILE user=NAME password=SECRET]

PID_START puts umqtt's packet id near its 16-bit limit first, to show the
wrap; ``ca=`` connects with TLS, checking the broker against that CA;
``receipts=0`` deletes on PUBACK (no receiver needed).
Prints the uplink and journal stats as one JSON line.
"""

import binascii
import json
import sys

from firmware.store.journal import PRIO_EVENT, Journal
from firmware.uplink.uplink import Uplink, make_client

opts = {}
args = []
for a in sys.argv[1:]:
    if "=" in a:
        k, v = a.split("=", 1)
        opts[k] = v
    else:
        args.append(a)
port, path, keyhex, count = int(args[0]), args[1], args[2], int(args[3])
pid_start = int(args[4]) if len(args) > 4 else 0
j = Journal(path)
for n in range(1, count + 1):
    j.append({"k": "trip" if n % 50 == 0 else "win", "n": n}, PRIO_EVENT if n % 50 == 0 else 1)
tls = {"ca": opts["ca"]} if "ca" in opts else None
client = make_client("127.0.0.1", port, "mp-dev", opts.get("user"), opts.get("password"), tls, 3000)
up = Uplink(j, client, "mp-dev", key=binascii.unhexlify(keyhex), batch_records=8, receipts=opts.get("receipts", "1") == "1")
if pid_start:
    client.connect()
    client._c.pid = pid_start
    up.connected = True
ok = up.drain(int(opts.get("drain_ms", "60000")))
s = up.stats()
s["drained"] = ok
s["pending"] = j.pending()
s["pid"] = client._c.pid if client._c else None
s["last_error"] = str(s["last_error"])
print(json.dumps(s))
