"""``edgefw service install|uninstall|status``: edgefw as a systemd service
on a Linux board.

    edgefw service install [--board NAME] [--root DIR] [--user edgefw]
                           [--priority 80] [--watchdog-s 2] [--cpu N]
                           [--metrics-port PORT | --metrics-textfile FILE]
                           [--slots] [--no-start]
    edgefw service uninstall [--root DIR]
    edgefw service status [--root DIR]

``install`` writes ``/etc/systemd/system/edgefw.service`` and, when there
is none yet, ``/etc/edgefw/edgefw.json`` (the journal under
``/var/lib/edgefw``); on the real root it also creates the system user in
the ``gpio``, ``i2c`` and ``dialout`` groups (those that exist) and runs
``systemctl daemon-reload`` and ``enable --now``. With ``--root DIR``
everything goes under DIR and nothing else is touched (for images and
tests). ``uninstall`` removes the unit and keeps the config and the
journal. The unit is rendered by ``render_unit``; its options are
explained in README's "Raspberry Pi and Jetson" section.
"""

import grp
import json
import os
import subprocess
import sys

import boards

UNIT = "edgefw.service"
UNIT_DIR = "etc/systemd/system"
CONF_DIR = "etc/edgefw"
STATE_DIR = "var/lib/edgefw"
GROUPS = ("gpio", "i2c", "dialout")
TIMEOUT_S = 60


def devices(board):
    """The device nodes the service may open: the board's I2C adapters and
    UARTs, and gpiochips (numbered by the kernel at boot, so allowed by
    class: ``char-gpiochip``)."""
    out = [spec["device"] for _r, spec in sorted(board.I2C.items())]
    out += [spec["device"] for _r, spec in sorted(board.UART.items())]
    return out


# an A/B install (firmware/linux/update.py): the service runs the ``current`` slot
SLOT_APP = "/opt/edgefw/current/app"
RECOVER_UNIT = "edgefw-recover.service"


def render_recover_unit():
    """Runs once per boot before the service: an update cut short by a
    power loss is finished or undone (firmware.linux.update.recover) before
    anything runs from a slot."""
    return "\n".join(
        [
            "[Unit]",
            "Description=edgefw: finish or undo an interrupted update",
            "DefaultDependencies=no",
            "After=local-fs.target",
            "Before=edgefw.service",
            "",
            "[Service]",
            "Type=oneshot",
            "RemainAfterExit=yes",
            "Environment=PYTHONPATH=%s" % SLOT_APP,
            "ExecStart=%s -m firmware.linux update recover --rootfs /" % sys.executable,
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


# the sandbox every edgefw unit gets (the gateway's too: edgefw.gateway.unit)
HARDENING = [
    "# hardening",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "RestrictNamespaces=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "SystemCallArchitectures=native",
]


def render_unit(board, exec_start, user="edgefw", priority=80, watchdog_s=2, cpu=None, groups=GROUPS, slots=False):
    allow = "\n".join("DeviceAllow=%s rw" % d for d in devices(board))
    lines = (
        [
            "[Unit]",
            "Description=edgefw sensor node safety loop (%s)" % board.DESCRIPTION,
            "After=local-fs.target network-online.target" + (" " + RECOVER_UNIT if slots else ""),
            "Wants=network-online.target",
            "StartLimitIntervalSec=60",
            "StartLimitBurst=10",
            "",
            "[Service]",
            "Type=notify",
            "NotifyAccess=main",
        ]
        + (["Environment=PYTHONPATH=%s" % SLOT_APP] if slots else [])
        + [
            "ExecStart=%s" % exec_start,
            "WatchdogSec=%ds" % watchdog_s,
            "Restart=on-failure",
            "RestartSec=1s",
            "TimeoutStartSec=30s",
            "TimeoutStopSec=10s",
            "KillSignal=SIGTERM",
            "User=%s" % user,
            "Group=%s" % user,
            "SupplementaryGroups=%s" % " ".join(groups),
            "ConfigurationDirectory=edgefw",
            "StateDirectory=edgefw",
            "WorkingDirectory=/var/lib/edgefw",
            "StandardOutput=journal",
            "StandardError=journal",
            "SyslogIdentifier=edgefw",
            "# real time: the loop's thread runs SCHED_FIFO, its memory locked",
            "CPUSchedulingPolicy=fifo",
            "CPUSchedulingPriority=%d" % priority,
            "CPUSchedulingResetOnFork=yes",
            "LimitRTPRIO=%d" % priority,
            "LimitMEMLOCK=infinity",
            "AmbientCapabilities=CAP_SYS_NICE CAP_IPC_LOCK",
            "CapabilityBoundingSet=CAP_SYS_NICE CAP_IPC_LOCK",
        ]
    )
    if cpu is not None:
        lines.append("CPUAffinity=%d" % cpu)
    lines += HARDENING + [
        "DevicePolicy=closed",
        allow,
        "DeviceAllow=char-gpiochip rw",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def exec_line(board, metrics_port=None, metrics_textfile=None, priority=80, slots=False):
    # the board's runtime itself, never the workstation's edgefw command
    cmd = "%s -m firmware.linux run --board %s --config /etc/edgefw/edgefw.json --journal /var/lib/edgefw/journal --rt-priority %d" % (
        sys.executable,
        board.NAME,
        priority,
    )
    if metrics_port is not None:
        cmd += " --metrics-port %d" % metrics_port
    if metrics_textfile:
        cmd += " --metrics-textfile %s" % metrics_textfile
    return cmd


def _path(root, rel):
    return os.path.join(root, rel)


def _run(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 1, str(e)
    return p.returncode, (p.stdout + p.stderr).strip()


def install(
    board, root="/", user="edgefw", priority=80, watchdog_s=2, cpu=None, metrics_port=None, metrics_textfile=None, out=sys.stdout, slots=False, start=True
):
    """``slots``: run the A/B installer's current slot (and recover an
    interrupted update at boot); ``start=False``: enable, do not start."""
    real = os.path.realpath(root) == "/"
    groups = [g for g in GROUPS if _group_exists(g)] if real else list(GROUPS)
    unit = render_unit(board, exec_line(board, metrics_port, metrics_textfile, priority, slots), user, priority, watchdog_s, cpu, groups, slots)
    for d in (UNIT_DIR, CONF_DIR, STATE_DIR):
        os.makedirs(_path(root, d), exist_ok=True)
    unit_path = _path(root, UNIT_DIR + "/" + UNIT)
    with open(unit_path, "w") as f:
        f.write(unit)
    out.write("wrote %s\n" % unit_path)
    if slots:
        with open(_path(root, UNIT_DIR + "/" + RECOVER_UNIT), "w") as f:
            f.write(render_recover_unit())
    conf = _path(root, CONF_DIR + "/edgefw.json")
    if not os.path.exists(conf):
        with open(conf, "w") as f:
            json.dump({"record": {"journal": "/var/lib/edgefw/journal"}}, f, indent=2)
            f.write("\n")
        out.write("wrote %s (edit it: docs/config.md)\n" % conf)
    else:
        out.write("kept %s\n" % conf)
    if not real:
        return 0
    if _run(["id", "-u", user])[0] != 0:
        rc, msg = _run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", user])
        if rc:
            out.write("useradd %s failed: %s\n" % (user, msg))
            return 1
    if groups:
        _run(["usermod", "-a", "-G", ",".join(groups), user])
    units = [UNIT, RECOVER_UNIT] if slots else [UNIT]
    for cmd in (["systemctl", "daemon-reload"], ["systemctl", "enable"] + (["--now"] if start else []) + units):
        rc, msg = _run(cmd)
        if rc:
            out.write("%s failed: %s\n" % (" ".join(cmd), msg))
            return 1
    return 0


def _group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def uninstall(root="/", out=sys.stdout):
    real = os.path.realpath(root) == "/"
    unit_path = _path(root, UNIT_DIR + "/" + UNIT)
    if real:
        _run(["systemctl", "disable", "--now", UNIT])
        if os.path.exists(_path(root, UNIT_DIR + "/" + RECOVER_UNIT)):
            _run(["systemctl", "disable", RECOVER_UNIT])
    if os.path.exists(_path(root, UNIT_DIR + "/" + RECOVER_UNIT)):
        os.remove(_path(root, UNIT_DIR + "/" + RECOVER_UNIT))
    if os.path.exists(unit_path):
        os.remove(unit_path)
        out.write("removed %s (kept /etc/edgefw and /var/lib/edgefw)\n" % unit_path)
    else:
        out.write("no %s\n" % unit_path)
    if real:
        _run(["systemctl", "daemon-reload"])
    return 0


def status(root="/", out=sys.stdout):
    unit_path = _path(root, UNIT_DIR + "/" + UNIT)
    if not os.path.exists(unit_path):
        out.write("not installed (no %s)\n" % unit_path)
        return 3
    out.write("installed: %s\n" % unit_path)
    if os.path.realpath(root) != "/":
        return 0
    rc, msg = _run(["systemctl", "status", "--no-pager", UNIT])
    out.write(msg + "\n")
    return rc


def add_parser(p):
    p.add_argument("action", choices=("install", "uninstall", "status"))
    p.add_argument("--board", metavar="NAME", help="board (default: EDGEFW_BOARD, then detection)")
    p.add_argument("--root", default="/", metavar="DIR", help="install under DIR instead of / (touches nothing else)")
    p.add_argument("--user", default="edgefw", help="the service's system user (default edgefw)")
    p.add_argument("--priority", type=int, default=80, help="SCHED_FIFO priority of the loop, 1-99 (default 80)")
    p.add_argument("--watchdog-s", type=int, default=2, help="WatchdogSec (default 2)")
    p.add_argument("--cpu", type=int, help="pin the service to this CPU (CPUAffinity)")
    p.add_argument("--metrics-port", type=int, help="serve metrics on 127.0.0.1:PORT")
    p.add_argument("--metrics-textfile", metavar="FILE", help="write metrics to FILE (under a directory the service may write)")
    p.add_argument("--slots", action="store_true", help="run the A/B installer's current slot (%s), recovering an interrupted update at boot" % SLOT_APP)
    p.add_argument("--no-start", action="store_true", help="enable the service without starting it")


def main(args):
    if args.action == "uninstall":
        return uninstall(args.root)
    if args.action == "status":
        return status(args.root)
    from hal.backend import choose_board

    try:
        board = boards.get(choose_board(args.board))
    except ValueError as e:
        print("edgefw: %s" % e, file=sys.stderr)
        return 2
    if board.FAMILY != "linux":
        print(
            "edgefw: the service is for Linux boards (%s); %r is not one" % (", ".join(n for n in boards.KNOWN if boards.get(n).FAMILY == "linux"), board.NAME),
            file=sys.stderr,
        )
        return 2
    if not 1 <= args.priority <= 99:
        print("edgefw: --priority must be 1..99", file=sys.stderr)
        return 2
    return install(
        board,
        args.root,
        args.user,
        args.priority,
        args.watchdog_s,
        args.cpu,
        args.metrics_port,
        args.metrics_textfile,
        slots=args.slots,
        start=not args.no_start,
    )
