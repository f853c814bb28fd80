"""Commands from the gateway to its nodes: ``edgefw/<node>/cmd``, QoS 1.

A command is the CBOR map ``{"cmd": "trip", "rule", "id", "utc_ms"}``
(``utc_ms``: the gateway's clock when it sent it; ``id``: 8 random
bytes), with a device key followed by an HMAC-SHA256 tag over
``b"edgefw command" | map`` keyed as the node's receipts are
(``firmware.uplink.receipt``), so a node can tell its gateway's commands
from anyone else's. ``trip`` is the only command there is: the gateway
can add a trip, never clear one.

The node's side is ``firmware.uplink.command``: it checks the tag, refuses
replays and commands more than a minute from its clock, and raises the
interlock's SITE cause.
"""

import os

from firmware import cbor

COMMANDS = ("trip",)
_DOMAIN = b"edgefw command"


def topic_for(node):
    return "edgefw/%s/cmd" % node


def make(cmd, rule, utc_ms, key=None):
    if cmd not in COMMANDS:
        raise ValueError("no such command %r (there is none that clears a trip)" % (cmd,))
    body = cbor.dumps({"cmd": cmd, "rule": rule, "id": os.urandom(8), "utc_ms": utc_ms})
    if key is None:
        return body
    return body + tag(key, body)


def tag(key, body):
    """HMAC-SHA256 over ``b"edgefw command" | body``, keyed as receipts are
    (the node's key for its commands, the gateway's for pull requests)."""
    from firmware.uplink.seal import derive, hmac_sha256

    return hmac_sha256(derive(key)[1], _DOMAIN + body)
