"""Which firmware this is: the SHA-256 of the image's manifest.

Every kind of image carries one naming each of its files with its
SHA-256: the ESP32 image from ``edgefw mpy-build`` (``manifest.json``),
an ESP32 application directory written by an update over the network
(the bundle's signed ``.manifest``, whose hash is the bundle's id) and a
Linux bundle's signed manifest, kept in each A/B slot. A hash of the
manifest therefore pins every file of the image. The device reports it in its ``boot`` event;
``edgefw ingest --fleet`` compares it with the registry's
``firmware_sha256`` (``edgefw fleet firmware DEVICE --image PATH``).

Start-up only: imported once and dropped.
"""

import hashlib
from binascii import hexlify


def manifest_hash(path):
    """Hex SHA-256 of the file at ``path``, or None when there is none (a
    development tree runs from no image)."""
    h = hashlib.sha256()
    buf = bytearray(256)
    try:
        with open(path, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(buf if n == len(buf) else buf[:n])
    except OSError:
        return None
    return hexlify(h.digest()).decode()
