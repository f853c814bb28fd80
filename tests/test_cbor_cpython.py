"""Our CBOR codec against cbor2, and against malformed input."""

import math

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware import cbor
from hal.errors import CBORError

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


@settings(max_examples=500, deadline=None)
@given(values)
def test_bytes_equal_cbor2_canonical(v):
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


@settings(max_examples=500, deadline=None)
@given(plain_values)
def test_fast_path_writes_what_micropython_writes(v):
    # maps of text keys without floats take the reorder-then-plain path
    assert cbor.dumps(v) == cbor.dumps_py(v) == cbor2.dumps(v, canonical=True)


def test_recorder_window_records_really_are_in_canonical_form(tmp_path):
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
