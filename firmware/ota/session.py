"""An update on the device, from the offer to the switch, in the loop's
idle time (``firmware.uplink.coop`` runs ``step`` in what is left of each
wait; this module is imported when an offer arrives and dropped after).

    u = Updater(clock, up)       # the loop's CoopClock, the uplink
    while u.step(deadline_us):   # each step returns by the deadline
        ...
    u.reset                      # True: switched, reset into the new directory

1. The offer (on ``edgefw/<id>/cmd``, a CBOR map, a hundred bytes)::

       {"op": "offer", "id": bundle id, "size": manifest bytes,
        "key": key id, "sig": 64 bytes, "chunk": bytes per chunk}

   is refused unless ``key`` is one of the image's trusted keys
   (``ota_keys.json`` in the application directory: {key id: public key
   in hex}, the fleet's signer).
2. The other application directory is emptied and the manifest fetched
   into it (file -1). The bundle's id must be the first 16 hex digits of
   its SHA-256, and ``sig`` its Ed25519 signature
   (``firmware.ota.ed25519``, in steps, read from the file: the manifest
   is never on the heap whole). Its first line is JSON::

       {"format": 1, "board": "esp32_devkitc", "mpy": "6.3",
        "version": "0.2.0", "files": 77, "selftest_s": 60}

   for this board and bytecode version, newer than what runs; then one
   line per file: ``sha256 size name``.
3. Every file is fetched in chunks (``{"op": "get", "id", "f", "o",
   "n"}`` on ``edgefw/<id>/ota/get``, answered by ``{"op": "chunk",
   "id", "f", "o", "d"}`` on the command topic), ``WINDOW`` chunks in
   flight, its SHA-256 checked as it is written.
4. The device's own files in the application directory (``CARRY``: its
   config) are copied over from the running one.
5. ``ota.json`` gets ``try`` (one rename, ``otaboot.write``) and the
   device resets; the new directory's self-test commits it or rolls it
   back (``firmware.ota.trial``).

A power cut before step 5 leaves ``ota.json`` as it was: the device boots
what it ran, and the next offer starts over. The status topic says each
phase, and why an offer was refused.

A stopped rollout takes a device back (``{"op": "revert", "id", "key",
"sig"}``): when ``id`` is the bundle that runs and ``sig`` is the
signer's Ed25519 signature over ``b"edgefw revert " + id`` (made with
the bundle, ``revert.sig``), the previous directory, still on the flash
and verified when it was installed, goes on trial as an update would,
with the same self-test, rollback and boot counter. Only the bundle the
signature names can be left this way, and only once: a revert that
fails its self-test leaves the device on that bundle, which then ignores
the same request; a device taken back ignores offers of that bundle from
then on. A downgrade offer is still refused.
"""

import binascii
import hashlib
import json
import os
import time

import otaboot

from firmware import cbor
from firmware.ota.status import app_file, get_topic, publish, publish_status, running_dir
from hal.errors import _Value

CHUNK_MAX = 4096
WINDOW = 2
MANIFEST = ".manifest"
RETRY_MS = 1000
GIVE_UP_MS = 30000
KEYS = "ota_keys.json"
# the device's own files inside an application directory: never taken
# from a bundle, carried from the running directory
CARRY = ("firmware/prechecked.json",)
_IDLE = 1
REVERT = b"edgefw revert "


def _version(v):
    return tuple(int(x) for x in str(v).split("."))


def _hex(b):
    return binascii.hexlify(b).decode()


def _check_name(name):
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
        raise Refused("unsafe-path", "file %r is not a plain relative path" % name)
    if name in CARRY or name == MANIFEST:
        raise Refused("unsafe-path", "file %r belongs to the device, not to a bundle" % name)


class Refused(_Value):
    """The device refused the update; ``reason`` is one short word for
    tools. In this module rather than hal/errors.py: that one is on the
    heap whenever the loop runs."""

    def __init__(self, reason, why):
        super().__init__("%s: %s" % (reason, why))
        self.reason = reason
        self.why = why


class Updater:
    def __init__(self, clock, up):
        self.clock = clock
        self.up = up
        self.c = up.client
        self.reset = False
        self.state = "verifying"
        self.st = otaboot.read()
        self.dir = running_dir()
        self.id = None
        self._g = self._run()
        self.started = time.ticks_ms()

    def step(self, deadline_us):
        """Work until ``deadline_us``; True while there is more to do."""
        while time.ticks_diff(deadline_us, time.ticks_us()) > 0:
            try:
                if next(self._g) == _IDLE:
                    return True
            except StopIteration:
                return False
            except Refused as e:
                self._status("refused", reason=e.reason, why=str(e))
                return False
            except Exception as e:  # noqa: B902  (said, then the loop goes on)
                self._status("failed", reason="error", why=repr(e))
                raise
        return True

    def _status(self, state, **extra):
        self.state = state
        if self.id is not None and "bundle" not in extra and state != "committed":
            extra["bundle"] = self.id  # what this status is about
        if self.st is not None:
            publish_status(self.up, self.st, state, self.dir, **extra)

    # -- the messages -----------------------------------------------------------
    def _take(self):
        """The next command as a dict, or None."""
        cmds = self.c.commands or ()
        while cmds:
            raw = cmds.pop(0)
            try:
                m = cbor.loads(raw)
            except ValueError:
                continue
            if isinstance(m, dict):
                return m
        return None

    def _offer(self):
        while True:
            m = self._take()
            if m is None:
                return None
            op = m.get("op")
            if op == "offer" or op == "revert":
                return m
            if op == "status" and self.st is not None:
                # the host asks (it was away when the device last said)
                self._status("committed" if self.dir == self.st.get("current") else "rolled-back")
            # else chunks of an update that is over: nothing to do with them

    # -- the update -------------------------------------------------------------
    def _run(self):
        offer = self._offer()
        if offer is None:
            return
        if self.st is None or self.dir is None:
            raise Refused("no-ab-layout", "this device runs a flat image; flash it with the A/B layout first")
        if offer.get("op") == "revert":
            yield from self._revert(offer)
            return
        bid = offer.get("id")
        sig = offer.get("sig")
        key = offer.get("key")
        size = offer.get("size")
        if not isinstance(bid, str) or not isinstance(sig, bytes) or not isinstance(key, str) or not isinstance(size, int):
            raise Refused("malformed", "the offer lacks id, size, sig or key")
        last = self.st.get("last") or {}
        if bid == self.st.get("bundle"):
            self._status("committed")
            return
        if last.get("bundle") == bid and last.get("result") in ("rolled-back", "refused"):
            # offered again (a retained offer): the device said no once
            return
        if bid == self.st.get("reverted_from"):
            # the fleet took this device back from that bundle: never again
            self._status("committed")
            return
        self.id = bid
        try:
            pub = self._trusted(key)
        except Refused as e:
            # an offer's refusal goes into ota.json's "last" (a revert's does not)
            self._refuse(e.reason, e.why)
        chunk = min(CHUNK_MAX, max(256, offer.get("chunk") or 1024))
        del offer
        target = otaboot.other(self.dir)
        self._status("downloading")
        yield
        yield from _rmtree(target)
        mpath = target + "/" + MANIFEST
        want = []
        yield from self._fetch(mpath, -1, size, None, chunk, want)
        if want[0][:16] != bid:
            self._refuse("malformed", "the manifest's SHA-256 is not the offered bundle id %s" % bid)
        self._status("verifying")
        yield
        from firmware.ota.ed25519 import Verifier

        yield
        mf = open(mpath, "rb")
        try:
            v = Verifier(pub, mf, sig)
            while v.step():
                yield
            ok = v.ok
            del v
        finally:
            mf.close()
        # the verifier's code goes before the download needs the heap
        del Verifier
        _drop("firmware.ota.ed25519")
        yield
        if not ok:
            self._refuse("bad-signature", "the manifest's signature does not verify with key %s" % key)
        mf = open(mpath)
        try:
            try:
                head = json.loads(mf.readline())
                n = head["files"]
                version = head["version"]
            except (ValueError, KeyError, TypeError):
                self._refuse("malformed", "the manifest's first line is not an ESP32 bundle's")
            self._check_head(head)
            selftest_s = head.get("selftest_s")
            del head
            self._status("downloading", version=version)
            for i in range(n):
                line = mf.readline().split(" ", 2)
                if len(line) != 3:
                    self._refuse("malformed", "the manifest lists %d files, %d lines follow" % (n, i))
                name = line[2].rstrip("\n")
                _check_name(name)
                yield from self._fetch(target + "/" + name, i, int(line[1]), line[0], chunk, None)
        finally:
            mf.close()
        for name in CARRY:
            yield from _copy(self.dir + "/" + name, target + "/" + name)
        # the switch: one rename; the next boot tries the new directory
        st = self.st
        st["try"] = target
        st["try_version"] = version
        st["try_bundle"] = self.id
        st["boots"] = 0
        if selftest_s:
            st["try_selftest_s"] = selftest_s
        otaboot.write(st)
        clock = self.clock
        self._status("switching", version=version, longest_us=getattr(clock, "task_longest_us", 0), max_gap_us=clock.max_gap_us)
        self.reset = True

    def _trusted(self, key):
        keys = _read_json(app_file(KEYS)) or {}
        if key not in keys:
            raise Refused("unknown-key", "signed by key %s, which is not among the %d trusted keys" % (key, len(keys)))
        return binascii.unhexlify(keys[key])

    def _revert(self, m):
        # refusals here leave ota.json alone: its "last" is about updates
        bid, key, sig = m.get("id"), m.get("key"), m.get("sig")
        if not isinstance(bid, str) or not isinstance(key, str) or not isinstance(sig, bytes):
            raise Refused("malformed", "the revert lacks id, key or sig")
        st = self.st
        if bid != st.get("bundle") or st.get("reverted_from") == bid or self.dir != st.get("current"):
            # not what runs (or tried once already): say what runs
            self._status("committed" if self.dir == st.get("current") else "rolled-back")
            return
        self.id = bid
        pub = self._trusted(key)
        prev = st.get("previous")
        if not prev or prev == self.dir:
            raise Refused("no-previous", "nothing ran here before bundle %s" % bid)
        from firmware.ota.ed25519 import Verifier

        v = Verifier(pub, REVERT + bid.encode(), sig)
        while v.step():
            yield
        ok = v.ok
        del v, Verifier
        _drop("firmware.ota.ed25519")
        if not ok:
            raise Refused("bad-signature", "the revert's signature does not verify with key %s" % key)
        version = st.get("previous_version") or (_read_json(prev + "/build.json") or {}).get("version")
        st["try"] = prev
        st["try_version"] = version
        st["try_bundle"] = st.get("previous_bundle")
        st["boots"] = 0
        st["reverted_from"] = bid
        st.pop("try_selftest_s", None)
        otaboot.write(st)
        self._status("switching", version=version, reverting=bid)
        self.reset = True

    def _check_head(self, head):
        info = _read_json(app_file("build.json")) or {}
        if head.get("format") != 1 or not isinstance(head.get("files"), int):
            self._refuse("malformed", "the manifest is not an ESP32 bundle's (format 1)")
        if head.get("board") != info.get("board"):
            self._refuse("wrong-board", "bundle is for %s, this device is %s" % (head.get("board"), info.get("board")))
        if head.get("mpy") != info.get("mpy"):
            self._refuse("wrong-mpy", "bundle's bytecode is %s, this device loads %s" % (head.get("mpy"), info.get("mpy")))
        try:
            newer = _version(head["version"]) > _version(info.get("version", "0"))
        except (ValueError, KeyError):
            self._refuse("malformed", "version %r is not dotted numbers like 1.2.3" % head.get("version"))
        if not newer:
            self._refuse("downgrade", "bundle version %s is not newer than the running %s" % (head["version"], info.get("version")))

    def _refuse(self, reason, why):
        if self.st is not None and self.id is not None:
            self.st["last"] = {"result": "refused", "bundle": self.id, "version": None, "reason": "%s: %s" % (reason, why)}
            otaboot.write(self.st)
        raise Refused(reason, why)

    def _fetch(self, path, i, size, want, chunk, digest):
        """File ``i`` of the bundle (-1: the manifest) into ``path``, its
        SHA-256 checked against ``want`` (or appended to ``digest``)."""
        _makedirs(path)
        h = hashlib.sha256()
        f = open(path, "wb")
        try:
            off = 0
            asked = 0
            heard = time.ticks_ms()
            while off < size:
                if self.up.connected:
                    while asked < size and asked - off < WINDOW * chunk:
                        n = min(chunk, size - asked)
                        publish(self.up, get_topic(self.up.device), cbor.dumps({"op": "get", "id": self.id, "f": i, "o": asked, "n": n}))
                        asked += n
                    self.c.wait(None, 0)  # write the requests, take what came
                got = False
                while True:
                    m = self._take()
                    if m is None:
                        break
                    if m.get("op") == "chunk" and m.get("id") == self.id and m.get("f") == i and m.get("o") == off:
                        d = m["d"]
                        del m
                        f.write(d)
                        h.update(d)
                        off += len(d)
                        got = True
                        heard = time.ticks_ms()
                        yield
                if not got:
                    quiet = time.ticks_diff(time.ticks_ms(), heard)
                    if quiet > GIVE_UP_MS:
                        self._refuse("timeout", "no chunk of %s for %d s" % (path, quiet // 1000))
                    if quiet > RETRY_MS:
                        asked = off  # lost (a reconnect): ask again
                        heard = time.ticks_ms()
                    yield _IDLE
        finally:
            f.close()
        got = _hex(h.digest())
        if digest is not None:
            digest.append(got)
        elif got != want:
            self._refuse("hash-mismatch", "file %s does not match its SHA-256 in the manifest" % path)


def _drop(name):
    # unreferenced, it goes at the next collection (one here would cost
    # this step several ms on a 256 KB heap)
    import sys

    sys.modules.pop(name, None)
    pkg, _, leaf = name.rpartition(".")
    if pkg in sys.modules and hasattr(sys.modules[pkg], leaf):
        delattr(sys.modules[pkg], leaf)


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _makedirs(path):
    parts = path.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        d = "/".join(parts[:i])
        try:
            os.mkdir(d)
        except OSError:
            pass  # it exists


def _rmtree(d):
    """Empty and remove ``d``, a file at a step."""
    try:
        entries = [(e[0], e[1]) for e in os.ilistdir(d)]
    except OSError:
        return
    for name, kind in entries:
        p = d + "/" + name
        if kind == 0x4000:
            yield from _rmtree(p)
        else:
            os.remove(p)
            yield
    os.rmdir(d)


def _copy(src, dst):
    try:
        fi = open(src, "rb")
    except OSError:
        return
    _makedirs(dst)
    with open(dst, "wb") as fo:
        while True:
            b = fi.read(1024)
            if not b:
                break
            fo.write(b)
            yield
    fi.close()
