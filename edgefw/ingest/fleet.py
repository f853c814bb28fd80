"""Ingest's view of the fleet registry (``edgefw ingest --fleet DIR``):
whose batches it opens, with which seal keys, and whom it refuses.

    keys, revoked = fleet_keys("/srv/fleet")
    expected = fleet_firmware("/srv/fleet")

Every device's seal keys still accepted, newest first: during a
rotation's overlap the old key opens batches too. A revoked device keeps
its newest key here, so its batches are authenticated and refused with a
sealed negative receipt naming the revocation (the device learns why and
keeps its records), not dropped as from a stranger.
"""

from edgefw.fleet.registry import Fleet


def fleet_keys(root):
    """({device: [key bytes, ...]}, {revoked device, ...})."""
    from edgefw.fleet import pki

    f = Fleet(root).load()
    now = pki.utcnow()
    keys, revoked = {}, set()
    for dev, e in sorted(f.doc["devices"].items()):
        held = f.seal.get(dev) or []
        if e["status"] == "revoked":
            revoked.add(dev)
            live = [k["hex"] for k in held[:1]]
        else:
            live = [k["hex"] for k in held if not k.get("retire_at") or pki.parse_iso(k["retire_at"]) > now]
        if live:
            keys[dev] = [bytes.fromhex(h) for h in live]
    return keys, revoked


def fleet_firmware(root):
    """{device: the firmware hash it should run, or None when the registry
    names none (``edgefw fleet firmware``)}: what a device's boot event is
    compared with."""
    f = Fleet(root).load()
    return {dev: e.get("firmware_sha256") for dev, e in f.doc["devices"].items()}
