"""Start-up on the device (ESP32, or the virtual ESP32), run by main.py:

1. outputs safe (boot.py drove the permit low; the firmware does again
   before anything else);
2. the reset cause (``machine.reset_cause()``), for the journal;
3. Wi-Fi from ``device.json`` (``network.WLAN``; the unix port has none and
   uses the host's network), kept up with backoff from the loop's idle time;
4. the clock from NTP when reachable (records say whether it is set);
   the image's hash (``firmware.attest``) for the boot event;
5. the firmware and, when the config enables it, the uplink in the loop's
   idle time (``firmware.uplink.coop``);
6. the READY line, then the loop.

The READY line, one line on the console, is what tools wait for::

    EDGEFW READY version=0.1.0 board=esp32_devkitc hal=esp32_devkitc bundle=7724c14a675913e7 reset=power clock=set wifi=up uplink=on

``board`` is the image's board, ``hal`` the board the HAL drives (``sim``
on the virtual ESP32); ``bundle`` is ``manifest.json``'s hash of the image (``edgefw mpy-build``);
``reset`` one of power, hard, watchdog, deepsleep, soft, unknown; ``clock``
set or unset; ``wifi`` up, down or none (no Wi-Fi configured, or no
``network`` module); ``uplink`` on or off. After the scenario of a sim
board ends, ``EDGEFW DONE`` and the summary as JSON follow.

With the A/B layout (``otaboot.py``: two application directories and
``ota.json``), ``build.json`` is the running directory's, and once the
uplink is up the boot reports its update state on
``edgefw/<id>/ota/status`` and, on the first boots of a new directory,
runs its self-test (``firmware.ota.trial``). An update that switched
directories ends the loop (``firmware.ota.Reset``) and the chip
is reset (``machine.reset()``; the virtual ESP32 exits with
``RESET_EXIT`` and its runner starts it again).

This module is dropped once the loop is built: its code takes no heap
while the loop runs.
"""

import json
import sys
import time

READY = "EDGEFW READY"
RESET_EXIT = 3

_CAUSES = (("PWRON_RESET", "power"), ("HARD_RESET", "hard"), ("WDT_RESET", "watchdog"), ("DEEPSLEEP_RESET", "deepsleep"), ("SOFT_RESET", "soft"))


def reset_cause():
    try:
        import machine

        c = machine.reset_cause()
    except (ImportError, AttributeError):
        import os

        # the virtual ESP32 says how it was started
        return (os.getenv("EDGEFW_RESET_CAUSE") if hasattr(os, "getenv") else None) or "unknown"
    for attr, name in _CAUSES:
        if getattr(machine, attr, None) == c:
            return name
    return "code%d" % c


def reset():
    try:
        import machine

        machine.reset()
    except (ImportError, AttributeError):
        pass
    import sys

    sys.exit(RESET_EXIT)


def read_json(name, default):
    try:
        with open(name) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


class WifiKeeper:
    """The station interface, reconnected with exponential backoff (1 s
    up to 60 s) whenever it drops; ``keep()`` never blocks and says
    whether the link is up."""

    def __init__(self, wlan, ssid, password):
        self.wlan = wlan
        self.ssid = ssid
        self.password = password
        self.backoff_ms = 1000
        self.next_try = time.ticks_ms()
        self.reconnects = 0

    def keep(self):
        if self.wlan.isconnected():
            self.backoff_ms = 1000
            return True
        now = time.ticks_ms()
        if time.ticks_diff(now, self.next_try) >= 0:
            try:
                self.wlan.connect(self.ssid, self.password)  # returns at once on the ESP32
            except OSError:
                pass
            self.reconnects += 1
            self.next_try = time.ticks_add(now, self.backoff_ms)
            self.backoff_ms = min(60000, self.backoff_ms * 2)
        return False


def wifi_up(wifi, wait_ms=10000):
    """A WifiKeeper, after waiting up to ``wait_ms`` for the first
    connection; None without Wi-Fi settings or a ``network`` module."""
    if not wifi:
        return None
    try:
        import network
    except ImportError:
        return None
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    k = WifiKeeper(wlan, wifi["ssid"], wifi.get("password", ""))
    t0 = time.ticks_ms()
    while not k.keep() and time.ticks_diff(time.ticks_ms(), t0) < wait_ms:
        time.sleep_ms(100)
    return k


def set_clock(host):
    """NTP once at start (``ntptime``, 1 s timeout); True when it worked."""
    if not host:
        return False
    try:
        import ntptime

        ntptime.host = host
        ntptime.settime()
        return True
    except Exception:  # unreachable, no network, no ntptime here
        return False


def main(argv=None):
    from firmware import app
    from firmware.clocks import utc_ms

    cause = reset_cause()
    dev = read_json("device.json", {})
    from firmware.ota.status import app_file

    info = read_json(app_file("build.json"), {})
    wifi = wifi_up(dev.get("wifi"))
    set_clock(dev.get("ntp"))
    from firmware import attest

    # an application directory an update wrote holds the bundle's signed
    # manifest (its SHA-256 is the bundle's id); one flashed whole, the
    # image's manifest.json
    image = attest.manifest_hash(app_file(".manifest")) or attest.manifest_hash(app_file("manifest.json"))
    del attest
    sys.modules.pop("firmware.attest", None)
    # a sim board (the virtual ESP32) runs its scenario in real time
    fw, sc = app.build(speed=1.0, fw=image)
    from firmware.store.journal import PRIO_EVENT

    clock_set = utc_ms() is not None
    fw.journal.append({"k": "reset_cause", "cause": cause, "clock_set": clock_set}, PRIO_EVENT)
    up = app.start_uplink(fw, wifi)
    print(
        "%s version=%s board=%s hal=%s bundle=%s reset=%s clock=%s wifi=%s uplink=%s"
        % (
            READY,
            info.get("version", "unknown"),
            info.get("board", fw.hw.board.NAME),
            fw.hw.board.NAME,
            info.get("bundle", "none"),
            cause,
            "set" if clock_set else "unset",
            "none" if wifi is None else ("up" if wifi.keep() else "down"),
            "on" if up is not None else "off",
        )
    )
    del dev, info
    if up is not None:
        from firmware.ota.trial import for_boot

        up.task = for_boot(fw, up)
        del for_boot
    if up is None or up.task is None:
        # the flat layout, or no uplink: nothing of the update stays loaded
        from firmware.ota import unload

        unload()
    import asyncio

    until = sc["duration_us"] if sc else None
    try:
        asyncio.run(fw.run(until_us=until))
    except Exception:
        if not getattr(fw.clock, "reset", False):
            raise
        # an update switched directories (firmware.ota.Reset)
        fw.safe()
        fw.journal.close()
        reset()
    finally:
        fw.safe()
    if up is not None:
        up.drain(3000)
    fw.journal.close()
    s = fw.summary()
    if up is not None:
        s["uplink"] = up.stats()
        s["uplink"]["longest_slice_us"] = fw.clock.longest_us
        s["uplink"]["max_gap_us"] = fw.clock.max_gap_us
    print("EDGEFW DONE " + json.dumps(s))
    return fw
