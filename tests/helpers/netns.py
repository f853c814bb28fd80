"""Three network namespaces for the gateway's chaos test, joined by veth
pairs made inside them (nothing is added to the host's namespace):

    nodes  10.77.1.1 --- 10.77.1.2  gateway  10.77.2.1 --- 10.77.2.2  upstream

``cut()``/``mend()`` take the WAN link (gateway to upstream) down and up;
``choke(kbit, loss_pct)`` makes it slow and lossy. This machine's kernel
has no netem (``tc qdisc ... netem``: "Specified qdisc kind is unknown")
and no tc classifiers for random drops, so ``choke`` puts a token bucket
(tbf) with a short queue on both ends, whose excess packets are dropped as
on a congested uplink, and, where nftables works in the namespaces, drops
``loss_pct`` % of the WAN's packets at random in both directions
(``numgen random``), as netem's loss would. No latency is added: neither
can delay a packet. ``close()`` ends every process started through
``popen`` and deletes the namespaces.
"""

import os
import shutil
import subprocess

IP = shutil.which("ip") or "/usr/sbin/ip"
TC = shutil.which("tc") or "/usr/sbin/tc"
NFT = shutil.which("nft")


def _run(*args):
    subprocess.run(list(args), check=True, capture_output=True, timeout=20)


class Tiers:
    def __init__(self):
        tag = "gwt%d" % os.getpid()
        self.ns = {"nodes": tag + "n", "gateway": tag + "g", "upstream": tag + "u"}
        self.procs = []
        self.made = []
        try:
            for name in self.ns.values():
                _run(IP, "netns", "add", name)
                self.made.append(name)
                self._in(name, IP, "link", "set", "lo", "up")
            n, g, u = self.ns["nodes"], self.ns["gateway"], self.ns["upstream"]
            _run(IP, "link", "add", "lan0", "netns", n, "type", "veth", "peer", "name", "lan1", "netns", g)
            _run(IP, "link", "add", "wan0", "netns", g, "type", "veth", "peer", "name", "wan1", "netns", u)
            for ns, dev, addr in ((n, "lan0", "10.77.1.1/24"), (g, "lan1", "10.77.1.2/24"), (g, "wan0", "10.77.2.1/24"), (u, "wan1", "10.77.2.2/24")):
                self._in(ns, IP, "addr", "add", addr, "dev", dev)
                self._in(ns, IP, "link", "set", dev, "up")
        except BaseException:
            self.close()
            raise

    def _in(self, ns, *args):
        _run(IP, "netns", "exec", ns, *args)

    def popen(self, tier, args, **kw):
        p = subprocess.Popen([IP, "netns", "exec", self.ns[tier]] + list(args), **kw)
        self.procs.append(p)
        return p

    def cut(self):
        self._in(self.ns["gateway"], IP, "link", "set", "wan0", "down")

    def mend(self):
        self._in(self.ns["gateway"], IP, "link", "set", "wan0", "up")

    def choke(self, kbit, loss_pct=0):
        """Returns whether random loss is in place (False: nftables is not
        installed or the kernel has no nf_tables)."""
        lossy = False
        for ns, dev in ((self.ns["gateway"], "wan0"), (self.ns["upstream"], "wan1")):
            if kbit:
                self._in(ns, TC, "qdisc", "replace", "dev", dev, "root", "tbf", "rate", "%dkbit" % kbit, "burst", "1600", "limit", "3200")
                if loss_pct and NFT:
                    rules = 'table inet wanloss {\n chain out {\n  type filter hook output priority 0; policy accept;\n  oifname "%s" counter\n  oifname "%s" numgen random mod 100 < %d counter drop\n }\n}\n' % (dev, dev, loss_pct)
                    r = subprocess.run([IP, "netns", "exec", ns, NFT, "-f", "-"], input=rules, capture_output=True, text=True, timeout=20)
                    lossy = r.returncode == 0
            else:
                self._in(ns, TC, "qdisc", "del", "dev", dev, "root")
                if NFT:
                    subprocess.run([IP, "netns", "exec", ns, NFT, "delete", "table", "inet", "wanloss"], capture_output=True, timeout=20)
        return lossy

    def random_drops(self):
        """(packets nftables dropped at random on the WAN, packets it saw
        there), both ends."""
        n = seen = 0
        for ns in (self.ns["gateway"], self.ns["upstream"]):
            if not NFT:
                return 0, 0
            out = subprocess.run([IP, "netns", "exec", ns, NFT, "list", "table", "inet", "wanloss"], capture_output=True, text=True, timeout=20).stdout
            counts = [int(part.split()[0]) for part in out.split("counter packets ")[1:]]
            if len(counts) == 2:
                seen += counts[0]
                n += counts[1]
        return n, seen

    def drops(self):
        """(dropped, overlimits, tbf qdiscs in place): packets the WAN's
        qdiscs dropped, and held back over the rate, so far (both ends)."""
        n = over = tbf = 0
        for ns, dev in ((self.ns["gateway"], "wan0"), (self.ns["upstream"], "wan1")):
            out = subprocess.run([IP, "netns", "exec", ns, TC, "-s", "qdisc", "show", "dev", dev], capture_output=True, text=True, timeout=20).stdout
            for part in out.split("dropped ")[1:]:
                n += int(part.split(",")[0])
            for part in out.split("overlimits ")[1:]:
                over += int(part.split()[0])
            tbf += out.startswith("qdisc tbf")
        return n, over, tbf

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for name in self.made:
            subprocess.run([IP, "netns", "del", name], capture_output=True, timeout=20)
        self.made = []


def mosquitto_conf(workdir, host, port):
    """A mosquitto config listening on ``host`` (not loopback: another
    namespace connects), persistent, as edgefw.emul.broker's."""
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        "listener %d %s\nallow_anonymous true\nmax_queued_messages 1000000\nmax_inflight_messages 64\n"
        "persistence true\npersistence_location %s/\nautosave_interval 1\nlog_dest file %s/mosquitto.log\n"
        % (port, host, workdir, workdir)
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    return str(conf)
