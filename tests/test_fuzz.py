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
