"""A real mosquitto broker on a free loopback port, for tests and
benchmarks.

with Mosquitto(tmp_path) as b:
    b.port; b.stop(); b.start()    # an outage, same port

with Mosquitto(tmp_path, tls_users={"dev": "secret"}) as b:
    b.tls_port, b.ca_pem, b.ca_der  # a second listener: TLS, passwords
"""

import os
import shutil
import socket
import subprocess
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_ca_and_server_cert(workdir, host="127.0.0.1"):
    """A throwaway CA and a server certificate for ``host`` (as an IP
    subjectAltName), made with the openssl command. Returns the paths
    (ca.pem, ca.der, server.pem, server.key)."""
    exe = shutil.which("openssl")
    if exe is None:
        raise RuntimeError("openssl not found: apt-get install openssl")
    w = str(workdir)

    def run(*args):
        subprocess.run([exe, *args], check=True, capture_output=True)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run("req", "-x509", *ec, "-keyout", w + "/ca.key", "-out", w + "/ca.pem", "-days", "2", "-subj", "/CN=edgefw test CA")
    run("x509", "-in", w + "/ca.pem", "-outform", "der", "-out", w + "/ca.der")
    run("req", *ec, "-keyout", w + "/server.key", "-out", w + "/server.csr", "-subj", "/CN=" + host)
    with open(w + "/ext.cnf", "w") as f:
        f.write("subjectAltName=IP:%s\nbasicConstraints=CA:FALSE\n" % host)
    run(
        "x509",
        "-req",
        "-in",
        w + "/server.csr",
        "-CA",
        w + "/ca.pem",
        "-CAkey",
        w + "/ca.key",
        "-CAcreateserial",
        "-out",
        w + "/server.pem",
        "-days",
        "2",
        "-extfile",
        w + "/ext.cnf",
    )
    return w + "/ca.pem", w + "/ca.der", w + "/server.pem", w + "/server.key"


class Mosquitto:
    @classmethod
    def fresh(cls, parent, name):
        """A broker in a new directory ``parent/name``: a benchmark's run
        that must not inherit an earlier run's sessions (a persistent
        session keeps its subscriptions while its client is away, and the
        broker queues what matches for it)."""
        d = parent / name
        d.mkdir()
        return cls(d)

    def __init__(self, workdir, port=None, tls_users=None):
        self.exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not shutil.which(self.exe):
            raise RuntimeError("mosquitto not found: apt-get install mosquitto (the README's test command does)")
        self.dir = workdir
        self.port = port or free_port()
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        tls = ""
        self.tls_port = None
        if tls_users:
            # a second listener as a device on the internet would meet it:
            # TLS with a server certificate, and a user name and password
            self.tls_port = free_port()
            self.ca_pem, self.ca_der, cert, key = make_ca_and_server_cert(workdir)
            pw = workdir / "passwd"
            pw.write_text("")
            for user, secret in tls_users.items():
                subprocess.run([shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-b", str(pw), user, secret], check=True, capture_output=True)
            tls = "listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nallow_anonymous false\npassword_file %s\n" % (
                self.tls_port,
                self.ca_pem,
                cert,
                key,
                pw,
            )
        self.conf.write_text(
            ("per_listener_settings true\n" + tls if tls else "")
            + "listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\nmax_inflight_messages 64\n"
            # persistent sessions survive a broker restart: what the broker
            # acknowledged to a device reaches a subscriber that was away
            "persistence true\npersistence_location %s/\nautosave_interval 1\n"
            "log_dest file %s\nlog_type error\nlog_type warning\n"
            % (self.port, workdir, self.log)
            # as root, mosquitto drops to user "mosquitto", who could not
            # write the persistence file into this test's private directory
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited: %s" % self.proc.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not listen on port %d" % self.port)

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
