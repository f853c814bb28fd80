"""A node's side of its gateway's commands (``edgefw/<id>/cmd``, made by
``edgefw.gateway.commands``).

    n = take(up, il)    # after a pump, when up.client.commands is not empty

A command is the CBOR map ``{"cmd", "rule", "id", "utc_ms"}``, keys in
canonical order (``id``, 8 bytes, then ``cmd``: what tells it from an
update's messages on the same topic without decoding those), followed, when the node has a seal key, by an
HMAC-SHA256 tag over ``b"edgefw command" | map`` keyed as the node's
receipts. ``trip`` is the only command: it raises the interlock's
``site_req``, which its next step takes as the SITE cause, so the trip
latches and only the node's own reset clears it. Nothing here can clear
or hold off a trip.

Refused, counted in the uplink's ``commands_refused`` with the reason in
``last_command_refusal``:

* ``untagged``/``bad tag``: the node has a key and the tag is missing or
  does not verify (anyone the broker lets publish there is not the
  gateway);
* ``replay``: an ``id`` among the last 8 taken;
* ``stale``: ``utc_ms`` more than ``MAX_AGE_MS`` from the node's UTC clock,
  when that is set (a command the broker held while the node was away
  is about a moment that has passed);
* ``off``: the config's ``interlock.site_trip`` is false;
* ``unknown``: any command but ``trip``, or a map that does not decode.
"""

from firmware import cbor

TAG_LEN = 32
MAX_AGE_MS = 60000
_DOMAIN = b"edgefw command"
# a map's first keys: "id" with 8 bytes, then "cmd"
_ID = b"\x62id\x48"
_CMD = b"\x63cmd"
_SEEN_KEPT = 8
_seen = []


def is_command(raw):
    return len(raw) > 17 and 0xA0 <= raw[0] <= 0xB7 and bytes(raw[1:5]) == _ID and bytes(raw[13:17]) == _CMD


def _refuse(up, why):
    up.commands_refused += 1
    up.last_command_refusal = why


def _check(raw, key, il):
    """None when the command is taken, else why it is refused."""
    raw = bytes(raw)
    if key is not None:
        from firmware.uplink.seal import _same, derive, hmac_sha256

        if len(raw) <= TAG_LEN:
            return "untagged"
        body = raw[:-TAG_LEN]
        if not _same(hmac_sha256(derive(key)[1], _DOMAIN + body), raw[-TAG_LEN:]):
            try:
                cbor.loads(raw)
                return "untagged"
            except Exception:
                return "bad tag"
    else:
        body = raw
    try:
        m = cbor.loads(body)
    except Exception:
        if key is not None:
            return "unknown"
        # the gateway tags with a key the node does not hold: the tag is
        # not checked, the broker's ACL is all that guards the topic
        try:
            m = cbor.loads(raw[:-TAG_LEN])
        except Exception:
            return "unknown"
    if not isinstance(m, dict) or m.get("cmd") != "trip":
        return "unknown"
    cid = m.get("id")
    if not isinstance(cid, bytes) or cid in _seen:
        return "replay"
    t = m.get("utc_ms")
    from firmware.clocks import utc_ms

    now = utc_ms()
    if now is not None and (not isinstance(t, int) or abs(now - t) > MAX_AGE_MS):
        return "stale"
    if not il.use_site:
        return "off"
    _seen.append(cid)
    if len(_seen) > _SEEN_KEPT:
        _seen.pop(0)
    il.site_req += 1
    return None


def take(up, il, others=True):
    """Act on the commands among what arrived on the command topic
    (``up.client.commands``) and take them out of it; the rest (an
    update's messages) stays for ``firmware.ota``, or with ``others``
    false (no updates over the network: Linux) is dropped. Returns the
    number of trips requested."""
    cmds = up.client.commands
    n = 0
    i = 0
    while cmds and i < len(cmds):
        raw = cmds[i]
        if not is_command(raw):
            if others:
                i += 1
            else:
                cmds.pop(i)
            continue
        cmds.pop(i)
        why = _check(raw, up.key, il)
        if why is None:
            up.commands_taken += 1
            n += 1
        else:
            _refuse(up, why)
    return n
