"""Install a bundle into the root partition of a raw SD-card image.

    off, size = image.root_partition("sdcard.img")   # bytes, from MBR or GPT
    image.install_image("sdcard.img", "v2.edgefw", board="rpi4")

The root partition is the last Linux one: MBR type 0x83, or on GPT the
Linux filesystem type 0FC63DAF-8483-4772-8E79-3D69D8477DE4. It is
loop-mounted (``mount -o loop,offset=...``), which needs root and loop
devices; without them ``install_image`` says so and changes nothing.
"""

import os
import struct
import subprocess
import tempfile
import uuid

from firmware.linux import update as U
from hal.errors import EdgefwError

SECTOR = 512
LINUX_GPT = uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4")
MBR_LINUX = 0x83
MBR_GPT = 0xEE


class ImageError(EdgefwError, ValueError):
    pass


def partitions(path):
    """[(type, offset bytes, size bytes)]; type is an int (MBR) or a UUID (GPT)."""
    with open(path, "rb") as f:
        mbr = f.read(SECTOR)
        if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
            raise ImageError("%s has no MBR boot signature: not a disk image" % path)
        entries = []
        for i in range(4):
            e = mbr[446 + 16 * i : 462 + 16 * i]
            ptype = e[4]
            lba, count = struct.unpack("<II", e[8:16])
            if ptype and count:
                entries.append((ptype, lba * SECTOR, count * SECTOR))
        if not any(t == MBR_GPT for t, _, _ in entries):
            return entries
        f.seek(SECTOR)
        hdr = f.read(92)
        if hdr[:8] != b"EFI PART":
            raise ImageError("%s has a protective MBR but no GPT header" % path)
        start, n, esize = struct.unpack("<QII", hdr[72:88])
        if esize < 128 or n > 1024:
            raise ImageError("%s: implausible GPT (%d entries of %d bytes)" % (path, n, esize))
        f.seek(start * SECTOR)
        table = f.read(n * esize)
    out = []
    for i in range(n):
        e = table[i * esize : (i + 1) * esize]
        if e[:16] == b"\0" * 16:
            continue
        first, last = struct.unpack("<QQ", e[32:48])
        out.append((uuid.UUID(bytes_le=e[:16]), first * SECTOR, (last - first + 1) * SECTOR))
    return out


def root_partition(path):
    """(offset, size) in bytes of the last Linux partition."""
    linux = [(o, s) for t, o, s in partitions(path) if t in (MBR_LINUX, LINUX_GPT)]
    if not linux:
        raise ImageError("%s has no Linux partition (MBR type 0x83 or GPT Linux filesystem)" % path)
    return linux[-1]


def install_image(img, bundle_path, board=None, progress=U._progress, **kw):
    try:
        off, size = root_partition(img)
    except (OSError, ImageError) as e:
        progress("refused: image: %s" % e)
        return U.REFUSED
    progress("step image: root partition at byte %d, %d MB" % (off, size >> 20))
    mnt = tempfile.mkdtemp(prefix="edgefw-image-")
    try:
        try:
            r = subprocess.run(["mount", "-o", "loop,offset=%d,sizelimit=%d" % (off, size), img, mnt], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            r = None
            err = str(e)
        if r is None or r.returncode:
            err = r.stderr.strip() if r is not None else err
            progress("refused: image: cannot loop-mount the root partition (needs root and loop devices): %s" % err)
            return U.REFUSED
        try:
            # the image's board is not running here: no health check can run
            return U.install(mnt, bundle_path, board=board, progress=progress, skip_health=True, **kw)
        finally:
            subprocess.run(["umount", mnt], capture_output=True, timeout=60)
    finally:
        try:
            os.rmdir(mnt)
        except OSError:
            pass
