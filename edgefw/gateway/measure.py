"""Bytes in vs out of the upstream codecs on real edgefw records.

    python -m edgefw.gateway.measure JOURNAL [--batch 32] [--json]

Reads a journal (e.g. one ``edgefw run --journal J`` wrote), cuts its
records into batches as a node's uplink does (events and telemetry apart,
``--batch`` records each), builds each upstream batch map as the gateway
does, and compresses it with each codec. The zstd dictionary is trained
on the records of the first half of the batches and measured on the second half only;
the others are measured on the same second half.
"""

import argparse
import json
import sys
import zlib

from firmware import cbor
from firmware.store.journal import Journal


def batches(path, size):
    j = Journal(path)
    out = []
    after = {}
    while True:
        q, recs = j.read_batch_after(after, size, 1 << 20)
        if not recs:
            break
        out.append([bytes(p) for _s, p in recs])
        after[q] = recs[-1][0]
    j.close()
    return out


def run(path, size, dict_kb=16):
    bs = batches(path, size)
    half = len(bs) // 2
    train, test = bs[:half], bs[half:]
    plains = [cbor.dumps(b) for b in test]
    res = {"batches": len(test), "records": sum(len(b) for b in test), "bytes_in": sum(len(p) for p in plains)}

    def row(name, fn):
        out = sum(min(len(fn(p)), len(p)) for p in plains)
        res[name] = {"bytes_out": out, "ratio": round(res["bytes_in"] / out, 2)}

    row("zlib6", lambda p: zlib.compress(p, 6))
    row("zlib9", lambda p: zlib.compress(p, 9))
    try:
        import zstandard
    except ImportError:
        res["zstd"] = "zstandard not installed"
        return res
    z3 = zstandard.ZstdCompressor(level=3)
    row("zstd3", z3.compress)
    # trained on the records themselves: the batches are too few samples
    samples = [r for b in train for r in b]
    d = zstandard.train_dictionary(dict_kb * 1024, samples)
    res["dict_bytes"] = len(d.as_bytes())
    for lvl in (3, 19):
        zc = zstandard.ZstdCompressor(level=lvl, dict_data=d)
        row("zstd%d_dict" % lvl, zc.compress)
    return res


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m edgefw.gateway.measure")
    p.add_argument("journal")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--dict-kb", type=int, default=16)
    a = p.parse_args(argv)
    print(json.dumps(run(a.journal, a.batch, a.dict_kb)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
