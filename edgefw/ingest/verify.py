"""Opening a batch: seal, device, topic and CBOR checked before anything
reaches a database. Pure functions of the payload and the keys, so every
worker of a shared subscription decides alike; and the receipt that
answers one (``firmware.uplink.receipt`` is the format)."""

from firmware import cbor


class Refused(Exception):
    """A batch ingest will not store. ``kind`` is the counter it goes to
    (tampered, malformed, unknown_device); ``dev`` the device a negative
    receipt goes to, or None when there is no one to tell (a device we
    hold no key for, or one named only by a topic it does not own)."""

    def __init__(self, kind, msg, dev=None, head=None):
        Exception.__init__(self, msg)
        self.kind = kind
        self.msg = msg
        self.dev = dev
        self.head = head or (None, None, None, None)


class Batch:
    __slots__ = ("dev", "q", "first", "last", "id", "boot", "utc_ms", "mono_ms", "nonce", "recs", "received", "refusal", "key")

    def __init__(self, dev, q, first, last, bid, boot, utc_ms, mono_ms, nonce, recs, received):
        self.dev = dev
        self.q = q
        self.first = first
        self.last = last
        self.id = bid
        self.boot = boot
        self.utc_ms = utc_ms
        self.mono_ms = mono_ms
        self.nonce = nonce
        # [(decoded record, its CBOR exactly as the device wrote it)]
        self.recs = recs
        self.received = received
        # the negative receipt, if the database refused this batch's rows
        self.refusal = None
        # the seal key that opened it: its receipt is sealed with the same
        # (a device mid-rotation holds only one of its keys)
        self.key = None


def loads(b):
    # cbor2's C decoder: ingest sees every record of every device
    import cbor2

    v = cbor2.loads(b)
    if not isinstance(v, dict):
        raise ValueError("expected a CBOR map, got %s" % type(v).__name__)
    return v


def peek(payload):
    """(q, first, last, id) of an unsealed batch, for the receipt that
    refuses it; None where it does not decode."""
    try:
        b = loads(payload)
        return b.get("q"), b.get("first"), b.get("last"), b.get("id")
    except Exception:
        return None


def topic_device(topic):
    """The device of an ``edgefw/<device>/up`` topic, or None."""
    parts = topic.split("/")
    return parts[1] if len(parts) == 3 and parts[0] == "edgefw" and parts[2] == "up" else None


def open_batch(payload, keys, topic_dev, received, dicts=None):
    """The checked, decoded batch, or Refused. ``keys`` None takes batches
    unsealed (a trusted network). A gateway's compressed batch is expanded
    first (``edgefw.gateway.codec``; ``dicts``: the zstd dictionaries held)."""
    from edgefw.gateway.codec import expand
    from firmware.uplink.seal import SealError, open_sealed, parse_header

    nonce = None
    head = None
    dev = None
    if keys is not None:
        try:
            dev, q, first, last, nonce, _h = parse_header(payload)
            head = (q, first, last, None)
        except (SealError, UnicodeError) as e:
            raise Refused("malformed", str(e), topic_dev, peek(payload))
        if dev not in keys:
            raise Refused("unknown_device", "no key for device %r" % dev)
        if topic_dev is not None and dev != topic_dev:
            raise Refused("tampered", "batch of %r on the topic of %r" % (dev, topic_dev))
        # a device's keys: one, or those still accepted, newest first
        # (a rotation's overlap, edgefw ingest --fleet)
        held = keys[dev] if isinstance(keys[dev], list) else [keys[dev]]
        opened_with = None
        for i, key in enumerate(held):
            try:
                dev, q, first, last, nonce, plain = open_sealed(payload, {dev: key})
                opened_with = key
                break
            except SealError as e:
                if i == len(held) - 1:
                    raise Refused("tampered", str(e), dev, head)
    else:
        plain = payload
    try:
        import cbor2

        batch = loads(plain)
        dev_b, q_b = batch["dev"], batch["q"]
        # the per-record work is the cost of ingest: cbor2's C decoder
        # called directly, one pass checking each record
        dec = cbor2.loads
        bodies = []
        add = bodies.append
        for r in expand(batch, dicts):
            if type(r) is not bytes:
                r = bytes(r)
            rec = dec(r)
            seq = rec.get("seq") if type(rec) is dict else None
            if type(seq) is not int or not 0 <= seq < (1 << 63):
                raise ValueError("a record that is not a map with a sequence number in 0..2**63-1")
            add((rec, r))
        if not isinstance(dev_b, str):
            raise ValueError("device id is not text")
        # an int, not 1.0 or True (equal to 1, yet no smallint)
        if type(q_b) is not int or q_b not in (0, 1):
            raise ValueError("queue %r is not 0 or 1" % (q_b,))
    except Exception as e:  # cbor2 raises several types for bad input
        raise Refused("malformed", "batch does not decode: %s" % e, topic_dev if keys is None else dev, head)
    if keys is not None and (dev_b != dev or q_b != q or batch.get("first") != first or batch.get("last") != last):
        raise Refused("tampered", "sealed header and batch disagree for %r" % dev, dev, head)
    if topic_dev is not None and dev_b != topic_dev:
        raise Refused("tampered", "batch of %r on the topic of %r" % (dev_b, topic_dev))
    out = Batch(
        dev_b,
        q_b,
        batch.get("first"),
        batch.get("last"),
        batch.get("id"),
        batch.get("boot"),
        batch.get("utc_ms"),
        batch.get("mono_ms"),
        nonce,
        bodies,
        received,
    )
    if keys is not None:
        out.key = opened_with
    return out


def make_receipt(dev, q, first, last, batch_id, ok=True, why=None, key=None, hold=0):
    """The receipt for a batch (``firmware.uplink.receipt``): sealed with the
    device's key when there is one; ``hold`` (ms) asks the device to start
    no new batch for that long."""
    from firmware.uplink import receipt

    m = {"dev": dev, "q": q, "first": first, "last": last, "id": batch_id, "ok": ok}
    if why is not None:
        m["why"] = why
    if hold:
        m["hold"] = hold
    body = cbor.dumps(m)
    return body + receipt._tag(key, body) if key is not None else body
