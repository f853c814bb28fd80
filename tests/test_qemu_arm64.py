"""edgefw run on an emulated ARM64 board: Debian bookworm's arm64 kernel in
QEMU, gpio-sim lines named and labelled as the rpi4's, i2c-stub holding a
BME280 and an ADXL345, the Linux backend through /dev/gpiochipN and
/dev/i2c-1 (tests/helpers/qemu_arm64.py builds it, at test time, into a
cache outside the checkout; tests/helpers/qemu_guest_check.py runs in the
guest and prints one result line).

Host packages qemu-system-arm and gcc-aarch64-linux-gnu (the README's test
command installs them); the cache directory is EDGEFW_QEMU_CACHE, default
~/.cache/edgefw/qemu. The permit must drop by the end of the cycle after
the change (two periods: the change lands anywhere in a period); whether
it came within one period is recorded for each trip."""

import json
import os

import pytest

from tests.helpers import qemu_arm64

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = [pytest.mark.slow, pytest.mark.qemu]


# wall-clock steps: an emulated CPU on a shared host can miss one by a few
# ms; such a miss alone gets one more boot, which must pass whole
TIMED = {"within the next cycle", "e-stop within the next cycle"}


def test_linux_backend_in_an_arm64_guest(capsys):
    qemu_arm64.require_host_tools()
    for attempt in range(2):
        result, console, guest = qemu_arm64.build_and_boot(ROOT, timeout_s=300)
        with capsys.disabled():
            print("\nqemu arm64 guest (boot %d): times %s" % (attempt + 1, json.dumps(guest.times)))
            if result is not None:
                print("qemu arm64 guest: trip latency %s ms (temperature), %s ms (e-stop), edgefw ready after %s s, guest uptime %s s"
                      % (result.get("trip_latency_temp_ms"), result.get("trip_latency_estop_ms"), result.get("edgefw_start_s"), result.get("guest_uptime_s")))
        assert result is not None, "no result line on the console:\n" + console[-6000:]
        failed = [s for s in result["steps"] if not s["ok"]]
        if not failed or any(s["name"] not in TIMED for s in failed) or not result.get("steps"):
            break
    assert result["ok"] and not failed, "guest checks failed: %s\n%s" % (failed or result.get("error"), console[-6000:])
    names = [s["name"] for s in result["steps"]]
    for want in ("temperature past the limit drops the permit", "within the next cycle", "reset refused while hot", "trip latched after cooling",
                 "reset accepted once cool", "e-stop drops the permit", "e-stop within the next cycle", "records journaled"):
        assert want in names
    causes = [t["cause"] for t in result["summary"]["trips"]]
    assert causes[0].startswith("env.temperature_c") and "estop" in causes
