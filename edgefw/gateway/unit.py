"""The gateway as a systemd service (``edgefw gateway --config FILE
--unit`` prints the unit; docs/gateway.md, "Running it as a service").

The gateway tells systemd it is ready (``READY=1``) once its store is
recovered and its receiver started (it connects to the site broker, and
reconnects, by itself: a broker that comes up later is no failure), feeds ``WatchdogSec=`` while its
tick thread goes round and its receiver runs (a hung store or a dead
thread stops the feeding, and systemd restarts it), and says
``STOPPING=1`` before it drains. No real-time scheduling: unlike the
device's loop nothing here has a deadline shorter than the broker's.
"""

import shlex
import sys

from firmware.linux.service import HARDENING

UNIT = "edgefw-gateway.service"
WATCHDOG_S = 30


def render(config, drain_s=2.0, user="edgefw-gw", python=None):
    exe = python or sys.executable
    start = "%s -m edgefw gateway --config %s --drain-s %g" % (shlex.quote(exe), shlex.quote(config), drain_s)
    return "\n".join(
        [
            "[Unit]",
            "Description=edgefw site gateway (%s)" % config,
            "After=network-online.target mosquitto.service",
            "Wants=network-online.target",
            "StartLimitIntervalSec=300",
            "StartLimitBurst=10",
            "",
            "[Service]",
            "Type=notify",
            "NotifyAccess=main",
            "ExecStart=%s" % start,
            "WatchdogSec=%ds" % WATCHDOG_S,
            "Restart=on-failure",
            "RestartSec=2s",
            "TimeoutStartSec=120s",
            # the drain, then closing the journals
            "TimeoutStopSec=%ds" % (int(drain_s) + 30),
            "KillSignal=SIGTERM",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "User=%s" % user,
            "Group=%s" % user,
            "ConfigurationDirectory=edgefw",
            "StateDirectory=edgefw-gateway",
            "WorkingDirectory=/var/lib/edgefw-gateway",
            "StandardOutput=journal",
            "StandardError=journal",
            "SyslogIdentifier=edgefw-gateway",
        ]
        + HARDENING
        # no device of the board's: the gateway opens none
        + ["PrivateDevices=yes", "", "[Install]", "WantedBy=multi-user.target", ""]
    )


class Notifier:
    """systemd's notify socket when the service has one (``NOTIFY_SOCKET``),
    else nothing."""

    def __init__(self, env=None):
        from hal.linux_watchdog import SystemdWatchdog

        try:
            self.sd = SystemdWatchdog(env)
        except OSError:
            self.sd = None

    def send(self, msg):
        if self.sd is not None:
            self.sd.notify(msg)

    def close(self):
        if self.sd is not None:
            # STOPPING=1 was sent before the drain
            self.sd.close(orderly=False)
