"""A real mosquitto broker on a free loopback port, for tests and
benchmarks.

with Mosquitto(tmp_path) as b:
    b.port; b.stop(); b.start()    # an outage, same port
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


class Mosquitto:
    def __init__(self, workdir, port=None):
        self.exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not shutil.which(self.exe):
            raise RuntimeError("mosquitto not found: apt-get install mosquitto (the README's test command does)")
        self.dir = workdir
        self.port = port or free_port()
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.conf.write_text(
            "listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\nmax_inflight_messages 64\n"
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
