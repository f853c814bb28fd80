"""The engine for ESP32s: the same stages, journal and failure rates as
``edgefw.rollout.engine``, the install an offer over MQTT
(``edgefw.fleet.ota.Server``) and the health the device's own status.

    engine = "mqtt"
    [mqtt]
    broker = "10.0.0.2:8883"
    tls_ca = "..."; tls_cert = "..."; tls_key = "..."   # an "ota" service

A device is healthy when it says it runs the bundle's version committed
(its self-test passed: interlock, sensors, a receipt from the ingest)
and says so unchanged for the stage's healthy time, never when it has
merely downloaded or switched. A device that refuses the bundle or rolls
it back has failed.

The fleet-level rollback sends each updated device the bundle's signed
revert (``revert.sig``, made with the bundle): the device puts its
previous directory, still on its flash, on trial with the same
self-test as an update, and counts as rolled back once it says it runs
the previous version committed. No downgrade is offered: a bundle of an
older version is still refused.
"""

from edgefw.fleet import ota
from edgefw.rollout import engine
from firmware.linux import update as U


class MqttRollout(engine.Rollout):
    def __init__(self, plan, state_dir=None, out=print, poll_s=None):
        engine.Rollout.__init__(self, plan, state_dir, out, sources=[], poll_s=poll_s)
        self.server = None

    def run(self):
        mq = self.plan.mqtt
        host, _, port = mq["broker"].rpartition(":")
        tls = {"ca": mq["tls_ca"], "cert": mq.get("tls_cert"), "key": mq.get("tls_key")} if mq.get("tls_ca") else None
        self.server = ota.Server(self.plan.bundle, host, int(port), tls=tls, client_id="edgefw-rollout", chunk=mq.get("chunk", ota.CHUNK))
        with self.server:
            self.sources[:] = [ota.Status(self.server)]
            self.server.ask([d.id for d in self.devices])
            try:
                return engine.Rollout.run(self)
            finally:
                self.server.withdraw([d.id for d in self.devices])

    def _install(self, dev, bundle, allow_downgrade=False):
        s = self.server
        if bundle != self.plan.bundle:
            return 1, "refused: an ESP32 goes back by the bundle's signed revert (_undo), never by a downgrade"
        bid = s.bundle.id
        self.log(dev, "offered %s (%s)" % (s.bundle.version, bid))
        s.offer([dev.id])

        def said(st):
            x = st.get(dev.id) or {}
            last = x.get("last") or {}
            return (x.get("bundle") == bid and x.get("state") in ("committed", "refused", "failed")) or (
                last.get("bundle") == bid and last.get("result") in ("rolled-back", "refused")
            )

        ins = self.plan.install
        if not s.wait_for(said, ins["timeout"] * (ins["max_restarts"] + 1) + ins["settle"]):
            return 1, "timeout: %s said nothing final about %s" % (dev.id, bid)
        x = s.status[dev.id]
        last = x.get("last") or {}
        self.log(dev, "device: %s %s" % (x.get("state"), last.get("reason") or x.get("why") or ""))
        if x.get("state") == "committed" and x.get("bundle") == bid:
            return U.OK, "committed"
        if last.get("result") == "rolled-back":
            return U.ROLLED_BACK, "device: rolled back %s: %s" % (s.bundle.version, last.get("reason"))
        return 1, "device: refused: %s" % (x.get("why") or last.get("reason"))

    def _undo(self, dev):
        done, prev = self._undo_needed(dev)
        if done is not None:
            return done
        s = self.server
        with s.cond:
            seen = len(s.history.get(dev.id, ()))
        try:
            s.revert([dev.id])
        except Exception as e:  # noqa: B902 (journaled per device by _rollback)
            return "rollback-failed", "revert not sent: %s" % e
        self.log(dev, "asked to go back to %s" % prev)

        def after(st):
            return s.history.get(dev.id, [])[seen:]

        def said(st):
            for x in after(st):
                if x.get("state") == "committed" and x.get("version") == prev:
                    return True
                if x.get("state") in ("refused", "rolled-back", "failed"):
                    return True
            return False

        ins = self.plan.install
        if not s.wait_for(said, ins["timeout"] * (ins["max_restarts"] + 1) + ins["settle"]):
            return "rollback-failed", "timeout: %s said nothing final about going back to %s" % (dev.id, prev)
        x = after(s.status)[-1]
        if x.get("state") == "committed" and x.get("version") == prev:
            return "rolled-back", "back to %s (its previous directory, committed)" % prev
        return "rollback-failed", "device: %s: %s" % (x.get("state"), x.get("why") or x.get("reason") or (x.get("last") or {}).get("reason"))
