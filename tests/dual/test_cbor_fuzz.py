"""The CBOR decoder under mutation fuzzing, on both targets: only
CBORError, and whatever it accepts re-encodes to bytes that decode to the
same (tests/dual/cbor_fuzz.py; tests/test_fuzz.py also holds the two
targets to the same verdict on every case)."""

from tests.dual.cbor_fuzz import fuzz


def test_mutated_cbor_raises_only_cborerror_and_accepts_nothing_invalid():
    counts, _verdicts = fuzz(seed=1, n=3000)
    print("cbor fuzz:", counts)
    assert counts["tracebacks"] == 0 and counts["invalid"] == 0, counts
    # the cases really exercise both sides of the decoder
    assert counts["refused"] > 1000 and counts["accepted"] > 300, counts
