"""The uplink on MicroPython: in the loop's own thread, in the idle time
between two cycles, never past the next one.

    up = attach(fw, device_id, cfg["uplink"])   # fw: firmware.loop.Firmware
    asyncio.run(fw.run())

``attach`` wraps the loop's clock: each time the loop waits for its next
cycle, ``CoopClock.wait_us`` first gives the uplink a slice of that wait
(what is left but ``margin_us``, at most ``slice_us``; none when less than
``min_slice_us`` is left), then waits the rest. The uplink's client
(``firmware.uplink.mqtt_nb``) never blocks and stops at the slice's end, so a
broker that hangs or vanishes costs the loop nothing; only the CPU work
of one batch (read, CBOR, seal) runs in a slice, bounded by the batch
size. ``wifi``, when given (``firmware.device.WifiKeeper``), is kept up
from the same slices.

The device also listens on its command topic (``edgefw/<id>/cmd``). A
gateway's trip command goes to the interlock (``firmware.uplink.command``);
anything else there starts an update (``firmware.ota.session``), imported only
then; an update, or the boot's self-test after one (the uplink's ``task``), gets what
is left of every wait, in steps that each return in well under a
millisecond, and its modules are dropped once it ends
(``firmware.ota.run_slice``). A task that has switched the device to a
new directory raises ``firmware.ota.Reset``: the loop ends with its
outputs safe and ``firmware.device`` resets the chip.
"""

import time

from firmware.uplink.mqtt_nb import Client
from firmware.uplink.uplink import from_config, tls_of


class CoopClock:
    def __init__(self, clock, up, wifi=None, margin_us=2000, slice_us=4000, min_slice_us=1000, every_ms=20):
        self.clock = clock
        # the loop's hot calls go straight to the clock
        self.ticks_us = clock.ticks_us
        self.ticks_diff = clock.ticks_diff
        self.ticks_add = clock.ticks_add
        self.sleep_ms = clock.sleep_ms
        self.up = up
        self.wifi = wifi
        self.margin_us = margin_us
        self.slice_us = slice_us
        self.min_slice_us = min_slice_us
        self.every_ms = every_ms
        self._last = time.ticks_ms() - every_ms
        self.slices = 0
        self.longest_us = 0
        self.max_gap_us = 0  # wall time from one cycle's wait to the next's
        self._t_wait = None
        self.errors = 0
        # the gateway's trip commands go to it (attach sets it)
        self.interlock = None

    async def wait_us(self, us):
        now = time.ticks_us()
        if self._t_wait is not None:
            gap = time.ticks_diff(now, self._t_wait)
            if gap > self.max_gap_us:
                self.max_gap_us = gap
        self._t_wait = now
        give = min(self.slice_us, us - self.margin_us)
        if give >= self.min_slice_us and time.ticks_diff(time.ticks_ms(), self._last) >= self.every_ms:
            t0 = time.ticks_us()
            self._last = time.ticks_ms()
            self.up.client.deadline_us = time.ticks_add(t0, give)
            try:
                if self.wifi is None or self.wifi.keep():
                    self.up.pump(max_batches=1)
            except Exception:  # the uplink never stops the loop
                self.errors += 1
            spent = time.ticks_diff(time.ticks_us(), t0)
            self.slices += 1
            if spent > self.longest_us:
                self.longest_us = spent
            us -= spent
        # ``task``: set on the uplink by firmware.ota while one runs, whose
        # code is on the heap only then
        if self.up.client.commands and self.interlock is not None:
            from firmware.uplink.command import take

            # before an update can swallow them; the rest stays for it
            take(self.up, self.interlock)
        if self.up.client.commands or getattr(self.up, "task", None):
            from firmware.ota import run_slice

            us -= run_slice(self, us)
        await self.clock.wait_us(us)


def attach(fw, device_id, u, wifi=None):
    """The config's ``uplink`` section as an uplink in ``fw``'s idle time;
    returns the ``Uplink``."""
    host, _, port = u["broker"].rpartition(":")
    tls = tls_of(u)
    if tls is not None:
        from firmware.uplink.umqtt_client import Client as Blocking

        # TLS: umqtt.simple, which blocks up to its timeout per call
        client = Blocking(host, int(port), device_id, u["username"], u["password"], tls, 200)
        client.deadline_us = None
    else:
        client = Client(host, int(port), device_id, u["username"], u["password"])
    up = from_config(fw.journal, client, device_id, u, batch_records=min(u["batch_records"], 32), batch_bytes=4096, window=2)
    # what the uplink loads on first use, loaded now: an import inside a
    # slice would run long past its end
    from firmware import cbor_decode  # noqa: F401  (receipts are parsed)
    from firmware.store import outbox, scan  # noqa: F401

    fw.clock = CoopClock(fw.clock, up, wifi)
    fw.clock.interlock = fw.interlock
    return up
