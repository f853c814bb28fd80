"""A real, private PostgreSQL server for tests and benchmarks.

    with Postgres() as pg:
        pg.url            # postgresql://edgefw:PASSWORD@127.0.0.1:PORT/edgefw
        pg.stop(); pg.start()          # an outage, same port, same data
        pg.sql("ALTER SYSTEM ...")     # as the superuser, over the socket

initdb runs as the ``postgres`` user (the server refuses to run as root)
in a fresh temporary directory owned by that user; the server listens on
127.0.0.1 at a free port with its socket in that directory, and both
server and directory go on ``close()`` (also when the test failed).
Local socket connections are trusted (the test's superuser door);
TCP needs the password, so a wrong one is refused as on a real server.
"""

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def _bin(name):
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/" + name))
    if not found:
        raise RuntimeError("PostgreSQL not found: apt-get install postgresql")
    return found[-1]


def _reachable_tmp():
    """The temporary directory, if the postgres user can reach into it
    (every directory on the way open to others), else /tmp: a test's own
    TMPDIR is often private to root."""
    import stat

    base = tempfile.gettempdir()
    p = os.path.abspath(base)
    while p != "/":
        if not os.stat(p).st_mode & stat.S_IXOTH:
            return "/tmp"
        p = os.path.dirname(p)
    return base


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Postgres:
    def __init__(self, settings=None):
        self.user = pwd.getpwnam("postgres")
        self.dir = tempfile.mkdtemp(prefix="edgefw-pg-", dir=_reachable_tmp())
        os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.port = _free_port()
        self.password = secrets.token_hex(8)
        self.settings = dict(settings or {})
        self.proc = None
        self.log = os.path.join(self.dir, "server.log")
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(self.password + "\n")
        os.chown(pwfile, self.user.pw_uid, self.user.pw_gid)
        self._as_postgres(
            [_bin("initdb"), "-D", self.data, "-U", "edgefw", "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"],
        )
        os.unlink(pwfile)
        self.url = "postgresql://edgefw:%s@127.0.0.1:%d/edgefw" % (self.password, self.port)

    def _as_postgres(self, args, **kw):
        return subprocess.run(
            args, user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[], cwd=self.dir, check=True, capture_output=True, timeout=120, **kw
        )

    def url_with(self, password=None, dbname="edgefw"):
        return "postgresql://edgefw:%s@127.0.0.1:%d/%s" % (password or self.password, self.port, dbname)

    def start(self):
        args = [_bin("postgres"), "-D", self.data, "-p", str(self.port), "-k", self.dir, "-c", "listen_addresses=127.0.0.1"]
        for k, v in self.settings.items():
            args += ["-c", "%s=%s" % (k, v)]
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(args, user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[], cwd=self.dir, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited: %s" % self.tail())
            if os.path.exists(os.path.join(self.dir, ".s.PGSQL.%d" % self.port)):
                try:
                    self.sql("SELECT 1")
                    if not getattr(self, "_created", False):
                        self.sql("CREATE DATABASE edgefw")
                        self._created = True
                    return self
                except subprocess.CalledProcessError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("postgres did not start: %s" % self.tail())

    def tail(self, n=20):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def sql(self, query, db="postgres"):
        """Run ``query`` with psql as the superuser over the socket; its
        output, unaligned and without headers."""
        p = self._as_postgres([_bin("psql"), "-h", self.dir, "-p", str(self.port), "-U", "edgefw", "-d", db, "-XAtqc", query])
        return p.stdout.decode()

    def stop(self, sig=signal.SIGINT):
        """SIGINT is PostgreSQL's fast shutdown: clients are cut off, what
        was committed stays."""
        if self.proc is not None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def close(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()
