"""ESP32 updates over the network (firmware/ota, edgefw/fleet/ota.py) on
virtual ESP32s: the device image on the MicroPython unix port, each
device with its own filesystem directory in the A/B layout, through a
real mosquitto, with the CPython ingest answering receipts (the
self-test needs one)."""

import json
import shutil
import subprocess
import time

import pytest

from edgefw.build import mpdeps
from edgefw.build.mpy import mpy_cross
from edgefw.deploy.bundle import keygen
from edgefw.emul.broker import Mosquitto
from edgefw.fleet import ops, ota
from firmware import cbor
from tests.helpers.ota_fleet import KEY, VDevice, flash, make_image, wait
from tests.test_store_forward import IngestWorker

pytestmark = pytest.mark.micropython
V2 = "2.0.0"


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    if not mpdeps.installed():
        pytest.fail("umqtt.simple is missing: run 'edgefw mp-deps'")
    tmp = tmp_path_factory.mktemp("ota")
    with Mosquitto(tmp) as b:
        keygen(str(tmp / "signer"))
        keygen(str(tmp / "attacker"))
        img, rom = make_image(tmp, b.port, str(tmp / "signer.pub"))
        yield {"tmp": tmp, "broker": b, "img": img, "rom": rom}


def devices(rig, tmp, names):
    out = []
    for n in names:
        flash(rig["img"], tmp / n, n)
        out.append(VDevice(tmp / n, rig["rom"], n))
    return out


def ingest(rig, tmp, names):
    return IngestWorker(rig["broker"].port, tmp / "i.sqlite", keys={n: KEY for n in names})


@pytest.fixture
def site(rig, tmp_path):
    """``site(names)``: the ingest and the devices (not started) of a test,
    stopped and closed after it whatever happened."""
    made = []

    def make(names):
        w = ingest(rig, tmp_path, names)
        made.append((w, devices(rig, tmp_path, names)))
        return made[-1]

    yield make
    for w, devs in made:
        for d in devs:
            d.stop()
        w.close()


def final(st, dev, bid):
    """The device's last word on bundle ``bid``: committed, refused or
    rolled back."""
    s = st.get(dev) or {}
    last = s.get("last") or {}
    return (s.get("bundle") == bid and s.get("state") in ("committed", "refused")) or (last.get("bundle") == bid and last.get("result") in ("rolled-back", "refused"))


def brief(status):
    return {n: (x.get("state"), x.get("dir"), x.get("bundle"), (x.get("last") or {}).get("result"), (x.get("last") or {}).get("reason")) for n, x in status.items()}


def bad_signature_bundle(rig, out, version):
    """Signed by a key the devices do not trust, claiming the signer's id."""
    tmp = rig["tmp"]
    ota.build_bundle(rig["img"], str(tmp / "attacker.key"), str(out), version)
    trusted = ota.key_hex(str(tmp / "signer.pub"))[0]
    import io
    import tarfile

    with tarfile.open(out) as t:
        members = [(m, t.extractfile(m).read()) for m in t.getmembers()]
    with tarfile.open(out, "w") as t:
        for m, data in members:
            if m.name == "manifest.sig":
                data = json.dumps(dict(json.loads(data), key=trusted)).encode()
                m.size = len(data)
            t.addfile(m, io.BytesIO(data))


def test_ten_devices_refuse_a_bad_signature_then_update(rig, site, tmp_path):
    names = ["esp-%02d" % i for i in range(10)]
    w, devs = site(names)
    good = tmp_path / "v2.edgefw"
    ota.build_bundle(rig["img"], str(rig["tmp"] / "signer.key"), str(good), V2, selftest_s=30)
    bad = tmp_path / "bad.edgefw"
    bad_signature_bundle(rig, bad, "2.0.1")
    port = rig["broker"].port
    for d in devs:
        d.start()
    assert wait(lambda: all(any(x.startswith("EDGEFW READY") for x in d.out) for d in devs), 60), [d.text() for d in devs]
    with ota.Server(str(bad), "127.0.0.1", port) as s:
        s.offer(names)
        assert s.wait_for(lambda st: all(final(st, n, s.bundle.id) for n in names), 60), s.status
        assert all(s.status[n]["reason"] == "bad-signature" for n in names), s.status
        # the manifest was fetched to check it; nothing of the payload
        assert s.files_asked == {-1}, s.files_asked
    for d in devs:
        st = d.state()
        assert st["current"] == "a" and st["try"] is None and st["last"]["result"] == "refused", st
    t0 = time.monotonic()
    with ota.Server(str(good), "127.0.0.1", port) as s:
        s.offer(names)
        ok = s.wait_for(lambda st: all(final(st, n, s.bundle.id) for n in names), 120)
        took = time.monotonic() - t0
        late = [n for n in names if not final(s.status, n, s.bundle.id)]
        assert ok, (late, [s.history.get(n) for n in late], [d.text()[-1500:] for d in devs if d.dev in late])
        assert all(s.status[n]["state"] == "committed" and s.status[n]["dir"] == "b" for n in names), s.status
        s.withdraw(names)
    # what each device measured, in its switching and committed reports
    stats = [x for n in names for x in s.history[n] if x and "longest_us" in x]
    assert len(stats) >= 2 * len(names), s.history
    print(
        "10 devices: offer to all committed %.1f s; chunks %d; longest update slice %d us; longest gap between cycles %d us; overruns %d"
        % (took, s.chunks_sent, max(x["longest_us"] for x in stats), max(x["max_gap_us"] for x in stats), max(x.get("overruns", 0) for x in stats))
    )
    for d in devs:
        st = d.state()
        assert st["current"] == "b" and st["version"] == V2 and st["try"] is None and st["previous"] == "a", st
        assert d.resets == 1, d.text()
        assert any(x.startswith("EDGEFW READY version=%s " % V2) for x in d.out), d.text()
    # attestation: each device's first boot named the flashed image, its
    # boot after the update the bundle (its id, the manifest's SHA-256)
    old_image, new_image = ops.image_hash(str(rig["img"])), ops.image_hash(str(good))
    assert new_image.startswith(s.bundle.id) and new_image != old_image

    def boots(n):
        with w.ing.lock:
            return [cbor.loads(b).get("fw") for (b,) in w.ing.db.execute("SELECT body FROM records WHERE device=? AND kind='boot' ORDER BY seq", (n,))]

    assert wait(lambda: all(boots(n)[-1:] == [new_image] for n in names), 30), {n: boots(n) for n in names}
    assert all(boots(n)[0] == old_image for n in names), {n: boots(n) for n in names}
    # ten devices and the broker on two shared cores: the OS preempts a
    # device inside a slice for tens of ms (one device alone: slices of
    # 5 ms, gaps of 26 ms at a 20 ms period, tests below; with ten, 40-460
    # ms were seen, overruns 0); a cycle held
    # up by the update would show as seconds (the whole verification,
    # the whole download)
    assert max(x["max_gap_us"] for x in stats) < 1000000, stats


def broken_image(rig, tmp, patch):
    """A copy of the image with ``patch(dir)`` applied."""
    img = tmp / "img-broken"
    shutil.copytree(rig["img"], img)
    patch(img)
    return img


def compile_into(img, rel, source):
    src = img.parent / "patched.py"
    src.write_text(source)
    subprocess.run([mpy_cross(), "-O3", "-o", str(img / rel), "patched.py"], cwd=img.parent, check=True, timeout=60)


def test_self_test_failure_rolls_back(rig, site, tmp_path):
    from edgefw.util import ROOT

    names = ["esp-st"]
    w, (d,) = site(names)
    # a release whose BME280 driver fails every read: the loop runs, the
    # interlock trips on the bus fault, the self-test finds a sensor silent
    source = (ROOT / "hal" / "drivers" / "bme280.py").read_text() + "\n\ndef _fail(self):\n    raise OSError(5)\n\n\nBME280.fetch = _fail\n"
    img = broken_image(rig, tmp_path, lambda i: compile_into(i, "hal/drivers/bme280.mpy", source))
    ota.build_bundle(img, str(rig["tmp"] / "signer.key"), str(tmp_path / "v3.edgefw"), "3.0.0", selftest_s=6)
    d.start()
    with ota.Server(str(tmp_path / "v3.edgefw"), "127.0.0.1", rig["broker"].port) as s:
        s.offer(names)
        assert s.wait_for(lambda st: final(st, "esp-st", s.bundle.id), 90), (s.status, d.text())
        st = s.status["esp-st"]
        assert st["dir"] == "a" and st["last"]["version"] == "3.0.0" and "sensor" in st["last"]["reason"], st
        # back in the previous directory, which reports itself, and the
        # retained offer is not taken again
        assert wait(lambda: any(x.startswith("EDGEFW READY version=0.1.0") for x in d.out[1:]) and d.resets == 2, 30), d.text()
        time.sleep(2)
        assert d.resets == 2 and d.state()["current"] == "a" and d.state()["try"] is None, d.text()
        s.withdraw(names)


def test_boot_loop_rolls_back(rig, site, tmp_path):
    names = ["esp-bl"]
    w, (d,) = site(names)
    img = broken_image(rig, tmp_path, lambda i: compile_into(i, "firmware/loop.mpy", "raise ImportError('broken release')\n"))
    ota.build_bundle(img, str(rig["tmp"] / "signer.key"), str(tmp_path / "v4.edgefw"), "4.0.0")
    d.start()
    with ota.Server(str(tmp_path / "v4.edgefw"), "127.0.0.1", rig["broker"].port) as s:
        s.offer(names)
        assert s.wait_for(lambda st: final(st, "esp-bl", s.bundle.id), 90), (s.status, d.text())
        st = s.status["esp-bl"]
        assert st["dir"] == "a" and "boot loop" in st["last"]["reason"], st
        s.withdraw(names)
    # the switch's reset, then MAX_BOOTS crashing boots of b, then a
    assert d.resets == 4 and d.state()["current"] == "a", d.text()


def test_power_cuts_during_download_switch_and_trial(rig, site, tmp_path):
    names = ["esp-pc"]
    w, (d,) = site(names)
    ota.build_bundle(rig["img"], str(rig["tmp"] / "signer.key"), str(tmp_path / "v2.edgefw"), V2, selftest_s=30)

    def ready(version, after):
        return wait(lambda: any(x.startswith("EDGEFW READY version=%s " % version) for x in d.out[after:]), 60)

    d.start()
    assert ready("0.1.0", 0), d.text()
    with ota.Server(str(tmp_path / "v2.edgefw"), "127.0.0.1", rig["broker"].port) as s:
        s.offer(names)
        # 1. during the download
        assert wait(lambda: s.chunks_sent >= 20, 60), (s.status, d.text())
        d.power_cut()
        st = d.state()
        assert st["current"] == "a" and st["try"] is None, st
        n = len(d.out)
        d.start()
        assert ready("0.1.0", n), d.text()
        # 2. during the switch: ota.json renamed, the reset not yet done
        assert s.wait_for(lambda st: (st.get("esp-pc") or {}).get("state") == "switching", 60), (s.status, d.text())
        d.power_cut()
        st = d.state()
        assert st["current"] == "a" and st["try"] == "b" and st["boots"] == 0, st
        n = len(d.out)
        d.start()
        assert ready(V2, n), d.text()
        # 3. after it: during the self-test of b
        assert s.wait_for(lambda st: (st.get("esp-pc") or {}).get("state") == "trying", 60), (s.status, d.text())
        d.power_cut()
        st = d.state()
        assert st["try"] == "b" and st["boots"] == 1, st
        n = len(d.out)
        d.start()
        assert ready(V2, n), d.text()
        assert s.wait_for(lambda st: final(st, "esp-pc", s.bundle.id), 60), (s.status, d.text())
        assert s.status["esp-pc"]["state"] == "committed", s.status
        # one device alone: its update's slices and the loop's gaps
        sw = [x for x in s.history["esp-pc"] if x and x.get("state") == "switching"][-1]
        print("one device: longest update slice %d us, longest gap between cycles %d us" % (sw["longest_us"], sw["max_gap_us"]))
        # measured 4-15 ms and 22-29 ms: the bound leaves room for the
        # shared machine; an update holding up cycles shows as seconds
        assert sw["longest_us"] < 50000 and sw["max_gap_us"] < 5 * 20000, sw
        s.withdraw(names)
    st = d.state()
    assert st["current"] == "b" and st["try"] is None and st["boots"] == 0, st


def test_power_cut_before_the_rename_boots_the_old_directory(rig, site, tmp_path):
    """The switch's one step not taken: ``ota.json.new`` written, not yet
    renamed (as a power cut between the two leaves it)."""
    names = ["esp-rn"]
    w, (d,) = site(names)
    fs = tmp_path / "esp-rn"
    shutil.copytree(fs / "a", fs / "b")
    st = d.state()
    (fs / "ota.json.new").write_text(json.dumps(dict(st, **{"try": "b", "try_version": V2, "boots": 0})))
    d.start()
    assert wait(lambda: any(x.startswith("EDGEFW READY version=0.1.0 ") for x in d.out), 60), d.text()
    assert d.state() == st


def _mqtt_plan(rig, tmp_path, names, **over):
    """A V2 bundle and an MQTT-engine plan for ``names`` in tmp_path/plan.json."""
    ota.build_bundle(rig["img"], str(rig["tmp"] / "signer.key"), str(tmp_path / "v2.edgefw"), V2, selftest_s=30)
    inv = {"device": [{"id": n, "board": "esp32_devkitc", "address": "127.0.0.1"} for n in names]}
    (tmp_path / "inv.json").write_text(json.dumps(inv))
    plan = {
        "bundle": "v2.edgefw",
        "inventory": "inv.json",
        "engine": "mqtt",
        "mqtt": {"broker": "127.0.0.1:%d" % rig["broker"].port},
        "stage_defaults": {"deadline_s": 90, "healthy_s": 3},
        "install": {"timeout_s": 30, "settle_s": 5, "max_restarts": 1},
    }
    plan.update(over)
    (tmp_path / "plan.json").write_text(json.dumps(plan))


def test_rollout_engine_drives_esp32s(rig, site, tmp_path):
    """``edgefw fleet rollout`` with engine "mqtt": stages of virtual
    ESP32s, each held to its own committed status for the healthy time."""
    from edgefw.rollout import engine
    from edgefw.rollout import plan as P
    from edgefw.rollout.mqtt import MqttRollout

    names = ["esp-r%d" % i for i in range(3)]
    w, devs = site(names)
    _mqtt_plan(rig, tmp_path, names, stages=[1, "100%"])
    out = []
    for d in devs:
        d.start()
    assert wait(lambda: all(any(x.startswith("EDGEFW READY") for x in d.out) for d in devs), 60)
    r = MqttRollout(P.load(str(tmp_path / "plan.json")), str(tmp_path / "state"), out=out.append, poll_s=0.5)
    assert r.run() == engine.DONE, "\n".join(out)
    assert "3 healthy" in out[-1], out
    for d in devs:
        st = d.state()
        assert st["current"] == "b" and st["version"] == V2 and st["try"] is None, st


def test_unknown_key_and_downgrade_refused(rig, site, tmp_path):
    """Refused before any of the payload is fetched, nothing changed."""
    names = ["esp-rf"]
    w, (d,) = site(names)
    ota.build_bundle(rig["img"], str(rig["tmp"] / "attacker.key"), str(tmp_path / "other.edgefw"), V2)
    ota.build_bundle(rig["img"], str(rig["tmp"] / "signer.key"), str(tmp_path / "old.edgefw"), "0.0.9")
    d.start()
    assert wait(lambda: any(x.startswith("EDGEFW READY") for x in d.out), 60), d.text()
    before = d.state()
    for bundle, reason in (("other.edgefw", "unknown-key"), ("old.edgefw", "downgrade")):
        with ota.Server(str(tmp_path / bundle), "127.0.0.1", rig["broker"].port) as s:
            s.offer(names)
            assert s.wait_for(lambda st: final(st, "esp-rf", s.bundle.id), 60), (s.status, d.text())
            assert s.status["esp-rf"]["state"] == "refused" and s.status["esp-rf"]["reason"] == reason, s.status
            assert s.files_asked <= {-1}, s.files_asked
            s.withdraw(names)
    st = d.state()
    assert st["current"] == before["current"] and st["try"] is None and st["last"]["result"] == "refused", st
    assert d.resets == 0, d.text()


def _revert_body(bundle, key=None, sig=None, bid=None):
    k, s = bundle.revert_sig
    return cbor.dumps({"op": "revert", "id": bid or bundle.id, "key": key or k, "sig": sig or s})


def test_revert_goes_back_to_the_previous_directory_only_when_signed(rig, site, tmp_path):
    """Updated to V2, the device refuses a revert signed by another key
    under the signer's key id, ignores one for a bundle it does not run,
    goes back to its previous directory (self-test, commit) on the
    bundle's own revert.sig, and ignores that same revert afterwards."""
    from edgefw.deploy.bundle import load_private
    from firmware.linux.bundle import _ed25519

    names = ["esp-rv"]
    w, (d,) = site(names)
    good = tmp_path / "v2.edgefw"
    ota.build_bundle(rig["img"], str(rig["tmp"] / "signer.key"), str(good), V2, selftest_s=30)
    d.start()
    assert wait(lambda: any(x.startswith("EDGEFW READY") for x in d.out), 60), d.text()
    with ota.Server(str(good), "127.0.0.1", rig["broker"].port) as s:
        b = s.bundle
        s.offer(names)
        assert s.wait_for(lambda st: final(st, "esp-rv", b.id), 120), (s.status, d.text())
        s.withdraw(names)
        assert s.status["esp-rv"]["state"] == "committed" and s.status["esp-rv"]["version"] == V2

        def next_word(body, pred, timeout=60):
            n = len(s.history["esp-rv"])
            s.c.publish("edgefw/esp-rv/cmd", body, qos=1).wait_for_publish(10)
            assert s.wait_for(lambda st: any(pred(x) for x in s.history["esp-rv"][n:]), timeout), (s.history["esp-rv"][n:], d.text()[-2000:])
            return [x for x in s.history["esp-rv"][n:] if pred(x)][0]

        forged = _ed25519()[1].new(load_private(str(rig["tmp"] / "attacker.key")), "rfc8032").sign(ota.REVERT + b.id.encode())
        x = next_word(_revert_body(b, sig=forged), lambda x: x.get("state") == "refused")
        assert x["reason"] == "bad-signature", x
        x = next_word(_revert_body(b, bid="0123456789abcdef"), lambda x: x.get("state") == "committed")
        assert x["version"] == V2 and d.state()["current"] == "b"
        x = next_word(_revert_body(b), lambda x: x.get("state") == "committed" and x.get("version") == "0.1.0", timeout=120)
        assert x["dir"] == "a"
        assert any(h.get("state") == "switching" and h.get("reverting") == b.id for h in s.history["esp-rv"]), s.history["esp-rv"]
        st = d.state()
        assert st["current"] == "a" and st["version"] == "0.1.0" and st["try"] is None and st["previous"] == "b", st
        assert d.resets == 2, d.text()
        # the same revert again: the device no longer runs that bundle
        x = next_word(_revert_body(b), lambda x: x.get("state") == "committed")
        assert x["version"] == "0.1.0" and d.state()["current"] == "a" and d.resets == 2


def test_stopped_rollout_takes_updated_esp32s_back(rig, site, tmp_path):
    """Stage 1 of two devices, one of them off: the stage exceeds 0 %
    failed, the rollout stops and the device it updated goes back to
    0.1.0 by the bundle's signed revert; stage 2 is never offered V2."""
    from edgefw.rollout import engine
    from edgefw.rollout import plan as P
    from edgefw.rollout.mqtt import MqttRollout

    names = ["esp-s0", "esp-s1", "esp-s2"]
    w, devs = site(names)
    _mqtt_plan(rig, tmp_path, names, stages=[2, "100%"], offline={"policy": "fail"}, stage_defaults={"deadline_s": 90, "healthy_s": 3, "max_failed": "0%", "min_sample": 1})
    on = [devs[0], devs[2]]
    for d in on:
        d.start()
    assert wait(lambda: all(any(x.startswith("EDGEFW READY") for x in d.out) for d in on), 60)
    out = []
    r = MqttRollout(P.load(str(tmp_path / "plan.json")), str(tmp_path / "state"), out=out.append, poll_s=0.5)
    assert r.run() == engine.STOPPED, "\n".join(out)
    # long enough for a download and a switch (8-10 s): back on 0.1.0 it
    # must not take the bundle again (the revert replaced the offer, and the
    # device remembers what it was taken back from)
    time.sleep(15)
    st0 = devs[0].state()
    assert st0["current"] == "a" and st0["version"] == "0.1.0" and st0["previous"] == "b" and st0["try"] is None, (st0, out)
    assert st0["reverted_from"] and devs[0].resets == 2, (st0, devs[0].text()[-2000:])
    rec = r.st.device("esp-s0")
    assert rec["rollback"] == "rolled-back" and "back to 0.1.0" in rec["rollback_reason"], (rec, out)
    assert r.st.device("esp-s1")["state"] == "failed", out
    st2 = devs[2].state()
    assert st2["current"] == "a" and st2["version"] == "0.1.0" and st2["last"] is None and devs[2].resets == 0, st2
    print("\n".join(out))
