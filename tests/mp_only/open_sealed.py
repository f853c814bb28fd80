"""MicroPython: open a batch sealed elsewhere.

    micropython tests/mp_only/open_sealed.py DEVICE KEYHEX BLOBFILE

Prints the plaintext in hex, or REJECTED and the reason. The blob comes in
a file: the unix port aborts on command-line arguments of 256 characters
or more.
"""

import binascii
import sys

from firmware.uplink.seal import SealError, open_sealed

dev, keyhex, blobfile = sys.argv[1], sys.argv[2], sys.argv[3]
with open(blobfile, "rb") as f:
    blob = f.read()
try:
    d, q, first, last, nonce, plain = open_sealed(blob, {dev: binascii.unhexlify(keyhex)})
    print("OK", d, q, first, last, binascii.hexlify(plain).decode())
except SealError as e:
    print("REJECTED", e)
