"""Our CBOR codec against cbor2, and against malformed input."""

import math

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware import cbor
from firmware.linux import cbor_cpython
from hal.errors import CBORError


@pytest.fixture(params=["libipld", "cbor2"])
def encoder(request, monkeypatch):
    """The CPython encoder with libipld first, and without it (cbor2
    alone, as where libipld is not installed): both must write what the
    pure-Python encoder writes."""
    assert cbor_cpython._ipld is not None, "libipld is a dependency: pip install -e ."
    if request.param == "cbor2":
        monkeypatch.setattr(cbor_cpython, "_ipld", None)
    return request.param


# the fixture holds one setting for every example of a run
_ONE_SETTING = [HealthCheck.function_scoped_fixture]

leaves = (
    st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.booleans()
    | st.none()
)
values = st.recursive(
    leaves, lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8) | st.integers(-1000, 1000), kids, max_size=5), max_leaves=25
)


@settings(max_examples=500, deadline=None, suppress_health_check=_ONE_SETTING)
@given(values)
def test_bytes_equal_cbor2_canonical(encoder, v):
    ours = cbor.dumps(v)
    assert ours == cbor2.dumps(v, canonical=True)
    back = cbor.loads(ours)
    assert back == v or (isinstance(v, float) and math.isnan(v))


@settings(max_examples=500, deadline=None)
@given(values)
def test_decodes_what_cbor2_writes(v):
    assert cbor.loads(cbor2.dumps(v)) == v


@pytest.mark.slow
# 30,000 random inputs (about 25 s): the CI run has a time budget; the
# mutated-encoding test below and tests/test_fuzz.py cover the decoder too
@settings(max_examples=30_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=64))
def test_malformed_input_raises_only_cborerror(data):
    try:
        cbor.loads(data)
    except CBORError:
        pass


@settings(max_examples=1000, deadline=None)
@given(values, st.data())
def test_mutated_encodings_raise_only_cborerror(v, data):
    enc = bytearray(cbor.dumps(v))
    i = data.draw(st.integers(0, len(enc) - 1))
    enc[i] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(0, len(enc)))
    try:
        cbor.loads(bytes(enc[:cut]))
    except CBORError:
        pass


plain_values = st.recursive(
    st.integers(min_value=-(2**64), max_value=2**64 - 1) | st.text(max_size=20) | st.binary(max_size=20) | st.booleans() | st.none(),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5),
    max_leaves=25,
)


@settings(max_examples=500, deadline=None, suppress_health_check=_ONE_SETTING)
@given(plain_values)
def test_fast_path_writes_what_micropython_writes(encoder, v):
    # maps of text keys without floats take the reorder-then-plain path
    assert cbor.dumps(v) == cbor.dumps_py(v) == cbor2.dumps(v, canonical=True)


def test_recorder_window_records_really_are_in_canonical_form(encoder, tmp_path):
    """The recorder appends window records as ``ordered``: hold it to that
    claim on every record of a run with every sensor."""
    from firmware.app import build
    from tests.dual._util import run

    fw, _sc = build("sim", journal=str(tmp_path / "j"))
    seen = []
    real = fw.journal.append

    def spy(record, priority=1, ordered=False):
        seq = real(record, priority, ordered)
        if ordered:
            seen.append(dict(record))
        return seq

    fw.journal.append = spy
    run(fw, cycles=1500)
    assert len(seen) >= 10
    for rec in seen:
        assert cbor.dumps_ordered(rec) == cbor2.dumps(rec, canonical=True) == cbor.dumps_py(rec)


def _nest(depth, leaf, as_map):
    v = leaf
    for _ in range(depth):
        v = {"k": v} if as_map else [v]
    return v


@pytest.mark.parametrize("as_map", [False, True])
@pytest.mark.parametrize("leaf", [0, 2**40, "x", [0] * 70])
def test_nesting_past_the_bound_is_refused_by_every_encoder(encoder, leaf, as_map):
    # cbor2 writes any depth; the pure-Python encoder and the decoder stop
    # at MAX_DEPTH, so a record both can read is all either may write
    from firmware.cbor_base import MAX_DEPTH

    depth = MAX_DEPTH - 1 if isinstance(leaf, list) else MAX_DEPTH
    ok = _nest(depth, leaf, as_map)
    for dumps in (cbor.dumps, cbor.dumps_ordered, cbor.dumps_py):
        assert cbor.loads(dumps(ok)) == ok
        with pytest.raises(CBORError):
            dumps(_nest(depth + 1, leaf, as_map))


def test_types_only_cbor2_knows_are_refused_on_the_fast_paths(encoder):
    # dumps_ordered lets orjson clear a record; orjson also takes a UUID,
    # which cbor2 would write as tag 37 and the pure-Python encoder refuses
    import datetime
    import uuid

    for v in (uuid.UUID(int=0xC0FFEE), {1}, datetime.date(2026, 1, 1), 2**64, [0, -(2**64) - 1]):
        for dumps in (cbor.dumps, cbor.dumps_ordered, cbor.dumps_py):
            with pytest.raises(CBORError):
                dumps({"v": v, "seq": 0xC8})
    # what orjson takes whole and cbor2 writes plainly goes through, as the
    # pure-Python encoder writes it
    rec = {"k": "win", "t": 0xC3C3, "ch": {"a": [1, 2**64 - 1, -(2**63), 0xD8D8]}, "seq": 7}
    assert cbor.dumps_ordered(rec) == cbor.dumps_py(rec) == cbor.dumps(rec)


class _Items(dict):
    def items(self):
        return [("z", 9)]


class _Iter(list):
    def __iter__(self):
        return iter([9, 1.5])

    def __len__(self):
        return 2


def test_subclasses_are_encoded_through_their_own_methods(encoder):
    # libipld reads a dict's or a list's storage, not its items() or
    # __iter__: a subclass must not reach it (the pure-Python encoder
    # calls the methods)
    for v in (_Items(a=1), _Iter([1]), {"k": _Items(a=1)}, [_Iter([1])]):
        assert cbor.dumps(v) == cbor.dumps_py(v)


_DEEP_IN_A_SMALL_STACK = """
import sys, threading
sys.path.insert(0, {root!r})
from firmware import cbor
from firmware.linux import cbor_cpython
from hal.errors import CBORError

def nest(depth, leaf):
    v = leaf
    for _ in range(depth):
        v = [v]
    return v

out = []
def go():
    for ipld in (cbor_cpython._ipld, None):
        cbor_cpython._ipld = ipld
        for v in ([nest(990, 0), 1.5], [nest(990, 0), {{1: 0}}]) + ((nest(250, 0),) if ipld else ()):
            try:
                cbor.dumps(v)
                out.append("written")
            except CBORError:
                out.append("refused")
threading.stack_size(256 * 1024)
t = threading.Thread(target=go)
t.start()
t.join()
print(" ".join(out))
"""


def test_deep_nesting_is_refused_in_a_thread_with_a_small_stack():
    # libipld recurses as deep as Python's recursion limit allows, which
    # a 256 KiB thread stack does not hold: the depth bound must stop a
    # value before any C encoder recurses into it
    import subprocess
    import sys

    from edgefw.util import ROOT

    p = subprocess.run([sys.executable, "-c", _DEEP_IN_A_SMALL_STACK.format(root=str(ROOT))], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split() == ["refused"] * 5
