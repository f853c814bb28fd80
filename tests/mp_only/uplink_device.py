"""MicroPython: fill a journal and forward it to a broker with umqtt.simple.

    micropython tests/mp_only/uplink_device.py PORT JOURNAL KEYHEX COUNT [PID_START]

PID_START puts umqtt's packet id near its 16-bit limit first, to show the
wrap. Prints the uplink and journal stats as one JSON line.
"""

import binascii
import json
import sys

from firmware.journal import PRIO_EVENT, Journal
from firmware.uplink import Uplink, make_client

port, path, keyhex, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
pid_start = int(sys.argv[5]) if len(sys.argv) > 5 else 0
j = Journal(path)
for n in range(1, count + 1):
    j.append({"k": "trip" if n % 50 == 0 else "win", "n": n}, PRIO_EVENT if n % 50 == 0 else 1)
client = make_client("127.0.0.1", port, "mp-dev")
up = Uplink(j, client, "mp-dev", key=binascii.unhexlify(keyhex), batch_records=8)
if pid_start:
    client.connect()
    client._c.pid = pid_start
    up.connected = True
ok = up.drain(60000)
s = up.stats()
s["drained"] = ok
s["pending"] = j.pending()
s["pid"] = client._c.pid if client._c else None
print(json.dumps(s))
