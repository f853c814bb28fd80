"""MicroPython: a provisioned device connects with its client certificate
through the uplink's umqtt client and publishes sealed batches.

    micropython tests/mp_only/fleet_device.py PORT CREDDIR DEVICE TOPIC [TOPIC ...]

CREDDIR is what ``edgefw fleet add`` wrote (ca.pem, client.pem,
client.key, seal.key). One batch goes to each TOPIC, in order, its
plaintext naming the topic. Prints one JSON line: connected or the error,
and the topics whose publish the broker acknowledged.
"""

import json
import sys

from firmware.uplink.seal import Sealer
from firmware.uplink.umqtt_client import Client

port, d, dev = int(sys.argv[1]), sys.argv[2], sys.argv[3]
topics = sys.argv[4:]
with open(d + "/seal.key") as f:
    key = bytes.fromhex(f.read().strip())
tls = {"ca": d + "/ca.pem", "cert": d + "/client.pem", "key": d + "/client.key"}
c = Client("127.0.0.1", port, dev, None, None, tls, 5000)
out = {"connected": False, "acked": []}
try:
    c.connect()
    out["connected"] = True
    box = Sealer(key, dev)
    for i, t in enumerate(topics):
        c.publish(t, box.seal(0, i + 1, i + 1, t.encode()))
        out["acked"].append(t)
    c.disconnect()
except OSError as e:
    out["error"] = str(e)
print(json.dumps(out))
