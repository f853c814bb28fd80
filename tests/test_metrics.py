"""Prometheus metrics from edgefw run: the textfile and the localhost
endpoint, off unless asked for."""

import re
import subprocess
import sys
import time
import urllib.request


def _samples(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = re.fullmatch(r'(edgefw_\w+)\{([^}]*)\} (\S+)', line)
        assert m, line
        out[(m.group(1), m.group(2))] = float(m.group(3))
    return out


def test_textfile_has_the_final_counts(tmp_path):
    prom = tmp_path / "edgefw.prom"
    p = subprocess.run(
        [sys.executable, "-m", "edgefw", "run", "--cycles", "1600", "--json", "--journal", str(tmp_path / "j"), "--metrics-textfile", str(prom)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    text = prom.read_text()
    assert "# TYPE edgefw_trips_total counter" in text
    s = _samples(text)
    assert s[("edgefw_cycles_total", 'board="sim"')] == 1600
    # the default scenario: one trip at 8 s, one refused reset at 10 s, one accepted at 15 s
    assert s[("edgefw_trips_total", 'board="sim",cause="env.temperature_c:high"')] == 1
    assert s[("edgefw_refused_resets_total", 'board="sim"')] == 1
    assert s[("edgefw_journal_records", 'board="sim"')] > 0
    assert not (tmp_path / "edgefw.prom.tmp").exists()


def test_http_endpoint_on_localhost_while_running(tmp_path):
    p = subprocess.Popen(
        [sys.executable, "-m", "edgefw", "run", "--cycles", "300", "--speed", "1", "--json", "--journal", str(tmp_path / "j"), "--metrics-port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = ""
        deadline = time.monotonic() + 30
        while "metrics on" not in line and time.monotonic() < deadline:
            line = p.stderr.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/metrics", line).group(0)
        first = _samples(urllib.request.urlopen(url, timeout=10).read().decode())
        time.sleep(1.5)
        second = _samples(urllib.request.urlopen(url, timeout=10).read().decode())
        key = ("edgefw_cycles_total", 'board="sim"')
        assert second[key] > first[key] >= 0  # live: the counter moves
        assert ("edgefw_permit", 'board="sim"') in second
        with __import__("pytest").raises(urllib.error.HTTPError):
            urllib.request.urlopen(url.replace("/metrics", "/other"), timeout=10)
        p.wait(timeout=30)
        assert p.returncode == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)


def test_off_by_default(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "edgefw", "run", "--cycles", "50", "--json", "--journal", str(tmp_path / "j")], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0 and "metrics" not in p.stderr


def test_inference_counts_and_latency(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"inference": {"enabled": true}}')
    prom = tmp_path / "edgefw.prom"
    p = subprocess.run(
        [sys.executable, "-m", "edgefw", "run", "--cycles", "1600", "--json", "--journal", str(tmp_path / "j"), "--config", str(cfg), "--metrics-textfile", str(prom)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    s = _samples(prom.read_text())
    b = 'board="sim"'
    windows = s[("edgefw_inference_windows_total", b)]
    assert windows > 0
    last, most, total = (s[("edgefw_inference_%s" % n, b)] for n in ("last_latency_seconds", "max_latency_seconds", "latency_seconds_total"))
    # the model's process answered every window: each took some time, the
    # longest is at least the last and the mean, and none is longer than the run
    assert 0 < last <= most <= total and total / windows <= most < 60
