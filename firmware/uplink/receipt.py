"""End-to-end receipts: the receiver's word that a batch is in its database.

    r = parse(body, key=device_key)    # {"q", "first", "last", "id", "ok", "why"}

``edgefw ingest`` publishes one on ``edgefw/<device>/receipt`` (QoS 1)
after the batch is committed, or a negative one (``ok`` false, ``why``
the reason) when it refuses the batch. The device deletes records only
on a positive receipt; a negative one changes nothing but the counters.

A receipt is the CBOR map ``{"dev", "q", "first", "last", "id", "ok"}``
(``"why"`` added when refused; ``"hold"``, milliseconds, when the
receiver is pacing a backlog: the device starts no new batch for that
long). With a device key it is followed by a
32-byte HMAC-SHA256 tag over ``b"edgefw receipt" + map``, with the key
that authenticates the device's batches (``firmware.uplink.seal``): a forged
receipt cannot make a device delete anything. A negative receipt that
fails its tag is still shown (it deletes nothing).

Receivers run on a host: they make receipts with
``edgefw.ingest.verify.make_receipt``, and the device carries only this,
the reading side.
"""

from firmware import cbor

TAG_LEN = 32
_DOMAIN = b"edgefw receipt"


def topic_for(device_id):
    return "edgefw/%s/receipt" % device_id


def _tag(key, body):
    from firmware.uplink.seal import derive, hmac_sha256

    return hmac_sha256(derive(key)[1], _DOMAIN + body)


def parse(blob, key=None):
    """The receipt as a dict with ``verified`` (its tag held, or no key is
    in use); None when it does not decode."""
    from firmware.uplink.seal import _same

    blob = bytes(blob)
    # tagged (a keyed receiver) or not: a device reads both, and trusts
    # a positive one only when it verifies
    for body, tag in ((blob[:-TAG_LEN], blob[-TAG_LEN:]), (blob, None)):
        if tag is not None and len(blob) <= TAG_LEN:
            continue
        try:
            m = cbor.loads(body)
        except Exception:
            continue
        if not isinstance(m, dict) or "ok" not in m:
            return None
        if key is None:
            m["verified"] = True
        else:
            m["verified"] = tag is not None and _same(_tag(key, body), tag)
        return m
    return None
