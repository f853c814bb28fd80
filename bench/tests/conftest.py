"""Fixtures for the hardware-facing tests; they run on whatever target
``--lg-env`` describes.

- ``runner``: the target's EdgefwRunDriver, the target brought to
  ``ready`` by its strategy first.
- ``probe(module, func, **kwargs)``: a probe's result from the target.
- ``@pytest.mark.needs("i2c", ...)``: the board features (its
  ``FEATURES``, as the target reports them) and bench features (the
  environment's ``features:``) a test needs; without them it is skipped
  with the reason.
- ``report``: scenario results for the run's report (bench/report.py),
  written to ``--bench-report DIR`` (default ``bench-report``), with
  ``target.json``: the target's description and, on a flashed target,
  whether this session flashed it.
"""

import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--bench-report", default="bench-report", help="directory for the bench report (HTML + PNG timelines)")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(*features): board or bench features the test needs")
    config._bench_scenarios = []


@pytest.fixture(scope="session")
def runner(request, target, strategy):
    strategy.transition("ready")
    r = target.get_driver("EdgefwRunDriver")
    # for the report: what the target is, and whether it was flashed
    request.config._bench_target = {"runtime": r.kind, "info": strategy.info, "flash": strategy.flash}
    return r


@pytest.fixture(scope="session")
def info(runner, strategy):
    return strategy.info


@pytest.fixture(scope="session")
def features(info, target, env):
    return set(info["features"]) | set(env.get_target_features()) | set(env.get_features())


@pytest.fixture(autouse=True)
def _needs(request):
    want = set()
    for m in request.node.iter_markers("needs"):
        want.update(m.args)
    if not want:
        return
    have = request.getfixturevalue("features")
    missing = sorted(want - have)
    if missing:
        info = request.getfixturevalue("info")
        runner = request.getfixturevalue("runner")
        pytest.skip("the %s board on the %s target lacks: %s" % (info["board"], runner.kind, ", ".join(missing)))


@pytest.fixture
def probe(runner, tmp_path):
    """``probe(module, func, **kwargs)``; the test's temporary directory
    is shared with the target (``tmp`` in a probe's arguments)."""

    def call(module, func, **kwargs):
        return runner.call(module, func, share=(str(tmp_path),), **kwargs)

    return call


@pytest.fixture(scope="session")
def report(request, runner, info):
    return request.config._bench_scenarios


def _title(t):
    title = "edgefw bench: %s board on %s" % (t["info"]["board"], t["runtime"])
    flash = t.get("flash")
    if flash:
        title += " (bundle %s, %s)" % (flash["bundle"], "flashed: %d files" % flash["copied"] if flash["flashed"] else "already on the device")
    return title


def pytest_sessionfinish(session):
    # every run writes its report, also one where every scenario skipped
    from bench.report import write_report

    cfg = session.config
    out = cfg.getoption("--bench-report")
    os.makedirs(out, exist_ok=True)
    t = getattr(cfg, "_bench_target", None)
    write_report(out, cfg._bench_scenarios, title=_title(t) if t else "edgefw bench")
    if t is not None:
        import json

        with open(os.path.join(out, "target.json"), "w") as f:
            json.dump(cfg._bench_target, f, indent=1)
