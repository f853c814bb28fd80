"""Fuzz suites, bounded and seeded: mutated CBOR on both targets with the
same verdict on each case, and mutated models through the loader, the
interpreter and ``edgefw infer --backend micro``. Each asserts no
traceback (only the documented error) and nothing invalid accepted, and
prints its counts (``pytest -s``)."""

import json

import pytest

from tests.conftest import run_micropython
from tests.dual.cbor_fuzz import fuzz


def _mp_fuzz(seed, n):
    code = "import json\nfrom tests.dual.cbor_fuzz import fuzz\nc, v = fuzz(%d, %d)\nprint(json.dumps([c, v]))\n" % (seed, n)
    p = run_micropython(["-c", code])
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.micropython
def test_cbor_fuzz_gives_the_same_verdict_on_both_targets():
    cp_counts, cp = fuzz(2, 4000)
    mp_counts, mp = _mp_fuzz(2, 4000)
    differ = [k for k in range(len(cp)) if cp[k] != mp[k]]
    print("cbor fuzz, CPython:", cp_counts, "MicroPython:", mp_counts, "verdicts that differ:", len(differ))
    assert len(cp) == len(mp) == 4000
    assert not differ, [(k, cp[k], mp[k]) for k in differ[:5]]
    for c in (cp_counts, mp_counts):
        assert c["tracebacks"] == 0 and c["invalid"] == 0, c


# --- models -------------------------------------------------------------

MAX_MACS = 300_000  # a mutant made huge is refused or skipped, not run for minutes


def _models():
    from tests.conftest import ROOT

    paths = sorted((ROOT / "firmware" / "models").glob("*.tflite")) + sorted((ROOT / "tests" / "data" / "tf").glob("*.tflite"))
    assert len(paths) >= 6
    return {p.stem: p.read_bytes() for p in paths}


def _mutant(rnd, data):
    """One to four mutations: a byte, or (most often hitting the
    flatbuffer's structure: offsets, indices, lengths, shapes) an aligned
    int32 set to a small or a boundary value, or a cut."""
    import struct

    b = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        if len(b) < 8:
            break
        k = rnd.randrange(5)
        if k in (0, 1):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        elif k in (2, 3):
            off = rnd.randrange(len(b) // 4) * 4
            v = rnd.choice([rnd.randint(-2, 12), rnd.randint(0, 64), 0x7FFFFFFF, -0x80000000, 65536, len(b)])
            b[off : off + 4] = struct.pack("<i", v)
        else:
            del b[rnd.randrange(len(b)) :]
    return bytes(b)


def _inputs(rnd, it, n):
    import array

    from firmware.nn.model import FLOAT32

    t = it.model.tensors[it.model.inputs[0]]
    if t.type == FLOAT32:
        return [array.array("f", [rnd.uniform(-4, 4) for _ in range(t.size())]) for _ in range(n)]
    return [array.array("b", [rnd.randint(-128, 127) for _ in range(t.size())]) for _ in range(n)]


def _out(it, x):
    it.input(0)[:] = x
    it.invoke()
    return bytes(it.output(0))


def fuzz_models(seed, per_model, infer_every=4, tmp_path=None):
    """Counts of mutated models through the loader, both kernel sets and
    (every ``infer_every``-th case) ``edgefw infer --backend micro``."""
    import contextlib
    import io
    import random
    import types

    import numpy as np

    from edgefw import infer
    from firmware.nn.interp import Interpreter
    from hal.errors import ModelError

    rnd = random.Random(seed)
    c = {"cases": 0, "refused": 0, "ran": 0, "skipped_big": 0, "tracebacks": 0, "invalid": 0, "infer_runs": 0, "infer_refused": 0}
    errors = []

    def fail(kind, name, e):
        c[kind] += 1
        if len(errors) < 5:
            errors.append("%s %s: %s: %s" % (kind, name, type(e).__name__, e))

    for name, data in _models().items():
        for case in range(per_model):
            m = _mutant(rnd, data)
            c["cases"] += 1
            try:
                it = Interpreter(m, vectorise=False)
            except ModelError:
                c["refused"] += 1
                it = None
            except Exception as e:
                fail("tracebacks", name, e)
                continue
            outs = None
            if it is not None and it.macs > MAX_MACS:
                c["skipped_big"] += 1
            elif it is not None:
                try:
                    x1, x2 = _inputs(rnd, it, 2)
                    a = _out(it, x1)
                    _out(it, x2)
                    # the same input gives the same output, whatever ran
                    # before, and the numpy kernels agree with the scalar ones
                    again = _out(it, x1)
                    vec = _out(Interpreter(m, vectorise=True), x1)
                except ModelError as e:
                    fail("invalid", name, e)  # loaded, then failed: not refused at load
                    continue
                except Exception as e:
                    fail("tracebacks", name, e)
                    continue
                c["ran"] += 1
                if not (a == again == vec):
                    fail("invalid", name, AssertionError("outputs %s / %s / %s" % (a[:8].hex(), again[:8].hex(), vec[:8].hex())))
                    continue
                outs = (x1, a)
            if tmp_path is None or case % infer_every or (it is not None and outs is None):
                continue
            (tmp_path / "m.tflite").write_bytes(m)
            t = it.model.tensors[it.model.inputs[0]] if it is not None else None
            x = np.frombuffer(bytes(outs[0]), dtype=np.float32 if outs[0].typecode == "f" else np.int8) if outs else np.zeros(6, np.int8)
            np.save(tmp_path / "in.npy", x.reshape((1,) + tuple(t.shape)) if t is not None else x.reshape(1, 6))
            args = types.SimpleNamespace(
                model=str(tmp_path / "m.tflite"),
                backend="micro",
                inputs=str(tmp_path / "in.npy"),
                out=str(tmp_path / "out.npy"),
                reference=False,
                describe=False,
            )
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    rc = infer.run(args)
                    args.describe = True
                    rc_d = infer.run(args)
            except Exception as e:
                fail("tracebacks", name + " (edgefw infer)", e)
                continue
            c["infer_runs"] += 1
            if rc == 2:
                c["infer_refused"] += 1
            if (rc == 0) != (outs is not None) or (rc_d == 0) != (it is not None):
                fail("invalid", name + " (edgefw infer)", AssertionError("infer exit %d, describe %d, loader %s" % (rc, rc_d, "ran" if outs else "refused")))
            elif outs is not None and np.load(tmp_path / "out.npy").tobytes() != outs[1]:
                fail("invalid", name + " (edgefw infer)", AssertionError("infer output differs from the interpreter's"))
    c["errors"] = errors
    return c


def _check_model_fuzz(c):
    print("model fuzz:", c)
    assert c["tracebacks"] == 0 and c["invalid"] == 0, c
    # mutations reach both sides: refused ones, and ones that still run
    assert c["refused"] > c["cases"] // 10 and c["ran"] > c["cases"] // 10, c


def test_mutated_models_raise_only_modelerror_and_run_deterministically(tmp_path, capsys):
    with capsys.disabled():
        _check_model_fuzz(fuzz_models(7, 800, tmp_path=tmp_path))


@pytest.mark.slow
def test_many_mutated_models(tmp_path, capsys):
    with capsys.disabled():
        _check_model_fuzz(fuzz_models(8, 3000, infer_every=10, tmp_path=tmp_path))
