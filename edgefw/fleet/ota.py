"""Updates over the network for the ESP32 (the device's side is
``firmware.ota``; docs/updates.md, "ESP32: updates over the network").

    from edgefw.fleet import ota
    ota.flash_layout(image, fs)                       # an image as the A/B layout
    m = ota.build_bundle(image, "release.key", "esp32-0.2.0.edgefw", "0.2.0")
    with ota.Server("esp32-0.2.0.edgefw", "127.0.0.1", 1883) as s:
        s.offer(["esp-0001", "esp-0002"])
        s.wait_for(lambda st: all(...))               # the devices' own status

An ESP32 bundle is a tar like the Linux ones (``firmware.linux.bundle``):
``manifest``, ``manifest.sig`` (``{"key", "sig"}``, Ed25519 over the
manifest's bytes, by the same signer), ``revert.sig`` (the same, over
``b"edgefw revert " + bundle id``: what lets a stopped rollout take a
device running it back, ``Server.revert``) and ``payload/``: an application
directory of a device image (``edgefw mpy-build --board``) less what
belongs to the device (``ROOT_FILES``, its config ``CARRY``). The
manifest is text the device reads a line at a time (its heap never holds
it whole): a JSON line, then one line per file, ``sha256 size name``::

    {"format":1,"board":"esp32_devkitc","mpy":"6.3","version":"0.2.0","created":1760000000,"files":77,"selftest_s":60}
    9f86d08...  1234 firmware/app.mpy

``Server`` publishes the offer (retained, on each device's command
topic), answers every chunk request, and keeps the status each device
publishes on ``edgefw/<id>/ota/status`` (asking, ``ask``, for what it
missed). ``Status`` is a
health source for the rollout engine (``edgefw.rollout.health``): it
reports what the device itself says, committed or not.
"""

import hashlib
import io
import json
import os
import shutil
import tarfile
import threading
import time
from pathlib import Path

from edgefw.fleet.registry import FleetError
from edgefw.util import end_mqtt

FORMAT = 1
# at the root of the device, outside both application directories: the
# boot files, and the device's own identity and settings
ROOT_FILES = ("boot.py", "main.py", "otaboot.mpy", "device.json", "device.key", "ca.pem", "client.pem", "client.key")
# inside an application directory but the device's own: never in a bundle
# (firmware/ota/session.py carries them over)
CARRY = ("firmware/prechecked.json",)
KEYS = "ota_keys.json"
CHUNK = 1024
# what a bundle's revert.sig signs, before its id (firmware/ota/session.py)
REVERT = b"edgefw revert "


def key_hex(pub_pem):
    """(key id, raw public key in hex) of an Ed25519 public key file."""
    from firmware.linux.bundle import _ed25519, key_id

    with open(pub_pem) as f:
        pub = _ed25519()[0].import_key(f.read())
    return key_id(pub), pub.export_key(format="raw").hex()


def trust(image, pub_pems):
    """Write the image's trusted keys (``ota_keys.json``) and renew its
    manifest."""
    from edgefw.build.mpy import BUILD, write_manifest

    doc = dict(key_hex(p) for p in pub_pems)
    (Path(image) / KEYS).write_text(json.dumps(doc, separators=(",", ":")))
    write_manifest(image, json.loads((Path(image) / BUILD).read_text())["board"])


def _app_files(image):
    image = Path(image)
    for p in sorted(image.rglob("*")):
        rel = p.relative_to(image).as_posix()
        if p.is_file() and rel not in ROOT_FILES and rel != "manifest.json":
            yield rel, p


def flash_layout(image, fs, app="a"):
    """Lay ``image`` out in the device filesystem ``fs`` as the A/B layout
    (otaboot.py): the boot and device files at the root, the rest in
    ``app``, and ``ota.json`` naming it. What ``tools/flash.py`` would
    write to a device for updates over the network."""
    image, fs = Path(image), Path(fs)
    fs.mkdir(parents=True, exist_ok=True)
    for name in ROOT_FILES:
        if (image / name).exists():
            shutil.copyfile(image / name, fs / name)
    for rel, p in _app_files(image):
        dst = fs / app / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dst)
    # what the directory's firmware reports as its image (firmware.attest)
    if (image / "manifest.json").exists():
        shutil.copyfile(image / "manifest.json", fs / app / "manifest.json")
    info = json.loads((image / "build.json").read_text())
    st = {"current": app, "version": info["version"], "bundle": None, "try": None, "boots": 0, "previous": None, "last": None}
    (fs / "ota.json").write_text(json.dumps(st))
    return st


def build_bundle(image, key_path, out, version, created=None, selftest_s=None):
    """Sign the application directory of ``image`` as an ESP32 bundle of
    ``version`` (its build.json says that version); returns the manifest.
    ``selftest_s``: how long the device's self-test of it may take
    (firmware/ota/trial.py; default 60 s)."""
    from edgefw.deploy.bundle import load_private
    from firmware.linux.bundle import _ed25519, key_id, parse_version

    parse_version(version)
    key = load_private(key_path)
    info = json.loads((Path(image) / "build.json").read_text())
    info["version"] = version
    members = []
    for rel, p in _app_files(image):
        if rel in CARRY:
            continue
        data = json.dumps(info, separators=(",", ":")).encode() if rel == "build.json" else p.read_bytes()
        members.append((rel, data))
    m = {
        "format": FORMAT,
        "board": info["board"],
        "mpy": info["mpy"],
        "version": version,
        "created": int(created if created is not None else time.time()),
        "files": len(members),
    }
    if selftest_s is not None:
        m["selftest_s"] = selftest_s
    lines = [json.dumps(m, separators=(",", ":"))] + ["%s %d %s" % (hashlib.sha256(d).hexdigest(), len(d), rel) for rel, d in members]
    mbytes = ("\n".join(lines) + "\n").encode()
    signer = _ed25519()[1].new(key, "rfc8032")
    kid = key_id(key.public_key())
    sbytes = json.dumps({"key": kid, "sig": signer.sign(mbytes).hex()}).encode()
    # leave to go back from this bundle, signed now: a stopped rollout
    # needs no signing key (firmware/ota/session.py, REVERT)
    bid = hashlib.sha256(mbytes).hexdigest()[:16]
    rbytes = json.dumps({"key": kid, "sig": signer.sign(REVERT + bid.encode()).hex()}).encode()
    tmp = str(out) + ".part"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [("manifest", mbytes), ("manifest.sig", sbytes), ("revert.sig", rbytes)] + [("payload/" + r, d) for r, d in members]:
            info_ = tarfile.TarInfo(name)
            info_.size = len(data)
            info_.mtime = m["created"]
            info_.mode = 0o644
            tar.addfile(info_, io.BytesIO(data))
    os.replace(tmp, out)
    return read_manifest(mbytes)


def read_manifest(mbytes):
    """The manifest's header, with ``files`` as [[name, size, sha256], ...]."""
    lines = mbytes.decode().splitlines()
    m = json.loads(lines[0])
    m["files"] = [[ln.split(" ", 2)[2], int(ln.split(" ", 2)[1]), ln.split(" ", 2)[0]] for ln in lines[1:]]
    return m


class Bundle:
    """A bundle read into memory, for serving (the host does not verify
    it: the devices do)."""

    def __init__(self, path):
        try:
            with tarfile.open(path, "r:") as tar:
                self.mbytes = tar.extractfile("manifest").read()
                sig = json.loads(tar.extractfile("manifest.sig").read())
                self.manifest = read_manifest(self.mbytes)
                self.data = [tar.extractfile("payload/" + f[0]).read() for f in self.manifest["files"]]
                names = tar.getnames()
                rsig = json.loads(tar.extractfile("revert.sig").read()) if "revert.sig" in names else None
        except (OSError, KeyError, ValueError, AttributeError, tarfile.TarError) as e:
            raise FleetError("%s is not an ESP32 bundle (%s); build one with edgefw.fleet.ota.build_bundle" % (path, e))
        self.key = sig["key"]
        self.sig = bytes.fromhex(sig["sig"])
        # (key id, signature) that lets a device running it go back, or None
        self.revert_sig = (rsig["key"], bytes.fromhex(rsig["sig"])) if rsig else None
        self.id = hashlib.sha256(self.mbytes).hexdigest()[:16]
        self.version = self.manifest["version"]
        self.board = self.manifest["board"]

    def offer(self, chunk=CHUNK):
        from firmware import cbor

        return cbor.dumps({"op": "offer", "id": self.id, "size": len(self.mbytes), "key": self.key, "sig": self.sig, "chunk": chunk})

    def file(self, i):
        """File ``i`` of the payload; -1 is the manifest."""
        if i == -1:
            return self.mbytes
        if i < 0:
            raise IndexError(i)
        return self.data[i]


class Server:
    """The host's side over MQTT (paho): offers, chunks, and the devices'
    status. ``tls``: {"ca", "cert", "key"} for the fleet's broker."""

    def __init__(self, bundle, host, port, tls=None, client_id="edgefw-ota", chunk=CHUNK):
        import paho.mqtt.client as mqtt

        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
        self.chunk = chunk
        self.status = {}
        self.history = {}  # device -> every status it published, in order
        self.chunks_sent = 0
        self.bytes_sent = 0
        self.files_asked = set()
        self.bad_requests = 0
        self.cond = threading.Condition()
        self._connected = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        if tls:
            c.tls_set(ca_certs=tls["ca"], certfile=tls.get("cert"), keyfile=tls.get("key"))
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        self.c = c
        self.host, self.port = host, port

    def __enter__(self):
        self.c.connect(self.host, self.port, keepalive=30)
        self.c.loop_start()
        if not self._connected.wait(10):
            self.c.loop_stop()
            raise FleetError("the OTA server could not connect to the broker at %s:%d" % (self.host, self.port))
        return self

    def __exit__(self, *exc):
        end_mqtt(self.c)

    def _on_connect(self, cl, u, flags, rc, p):
        cl.subscribe([("edgefw/+/ota/get", 0), ("edgefw/+/ota/status", 1)])
        self._connected.set()

    def _on_message(self, cl, u, msg):
        from firmware import cbor

        parts = msg.topic.split("/")
        dev = parts[1]
        try:
            m = cbor.loads(msg.payload) if msg.payload else None
        except ValueError:
            self.bad_requests += 1
            return
        if parts[-1] == "status":
            with self.cond:
                self.status[dev] = m
                self.history.setdefault(dev, []).append(m)
                self.cond.notify_all()
            return
        b = self.bundle
        if not isinstance(m, dict) or m.get("op") != "get" or m.get("id") != b.id:
            self.bad_requests += 1
            return
        try:
            f, o, n = int(m["f"]), int(m["o"]), min(int(m["n"]), 4096)
            d = b.file(f)[o : o + n]
        except (KeyError, ValueError, TypeError, IndexError):
            self.bad_requests += 1
            return
        self.chunks_sent += 1
        self.bytes_sent += len(d)
        self.files_asked.add(f)
        cl.publish("edgefw/%s/cmd" % dev, cbor.dumps({"op": "chunk", "id": b.id, "f": f, "o": o, "d": d}), qos=0)

    def offer(self, devices):
        """Offer the bundle to each device (retained: a device that is away
        gets it when it connects)."""
        body = self.bundle.offer(self.chunk)
        for d in devices:
            self.c.publish("edgefw/%s/cmd" % d, body, qos=1, retain=True).wait_for_publish(10)

    def ask(self, devices):
        """Ask each device for its status (it publishes it at boot and at
        each step of an update, not retained)."""
        from firmware import cbor

        body = cbor.dumps({"op": "status"})
        for d in devices:
            self.c.publish("edgefw/%s/cmd" % d, body, qos=1).wait_for_publish(10)

    def revert(self, devices):
        """Ask each device running this bundle to go back to its previous
        directory (the bundle's signed revert). Retained, in place of the
        offer: a device that reconnects (after its revert's reset, or
        away now) must not find the offer there and take the bundle again."""
        from firmware import cbor

        if self.bundle.revert_sig is None:
            raise FleetError("bundle %s carries no revert.sig (built before reverts were signed): rebuild it to take devices back" % self.bundle.id)
        key, sig = self.bundle.revert_sig
        body = cbor.dumps({"op": "revert", "id": self.bundle.id, "key": key, "sig": sig})
        for d in devices:
            self.c.publish("edgefw/%s/cmd" % d, body, qos=1, retain=True).wait_for_publish(10)

    def withdraw(self, devices):
        for d in devices:
            self.c.publish("edgefw/%s/cmd" % d, b"", qos=1, retain=True).wait_for_publish(10)

    def wait_for(self, pred, timeout):
        """Wait until ``pred(status)`` holds ({device: its last status});
        returns whether it did."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.status):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.5))
        return True


class Status:
    """A health source for the rollout engine: the device's own update
    status, as it published it (``observe`` gives the keys
    ``edgefw.rollout.health.judge`` reads)."""

    def __init__(self, server, ask_s=5.0):
        self.server = server
        self.ask_s = ask_s

    def observe(self, device):
        from edgefw.rollout.health import Unreachable

        dev = getattr(device, "id", device)
        s = self.server
        with s.cond:
            st = s.status.get(dev)
        if st is None:
            s.ask([dev])
            s.wait_for(lambda x: dev in x, self.ask_s)
            with s.cond:
                st = s.status.get(dev)
        if st is None:
            raise Unreachable("%s did not answer a status request in %.0f s" % (dev, self.ask_s))
        state = st.get("state")
        last = dict(st.get("last") or {})
        return {
            "slot": st.get("dir"),
            "version": st.get("version"),
            "state": "committed" if state == "committed" else state,
            "open": False,
            "txn": None,
            "installing": state in ("verifying", "downloading", "switching", "trying"),
            "last": last,
            "problems": [],
            "unit": None,
        }
