"""Updates over the network on the ESP32 (docs/updates.md, "ESP32: updates
over the network").

Nothing here is imported by the loop until an offer arrives on the
device's command topic (``firmware.uplink.coop``), or for the boot's
report and self-test (``trial``); every module of it is dropped again
once that is over.

Topics (the fleet's ACL grants them, edgefw/fleet/broker.py)::

    edgefw/<id>/cmd          in:  offers and chunks (CBOR maps, "op")
    edgefw/<id>/ota/get      out: chunk requests, QoS 0
    edgefw/<id>/ota/status   out: the device's update state, retained

The status is a CBOR map: ``dev``, ``state`` (committed, trying,
downloading, verifying, switching, refused, rolled-back), ``dir``,
``version`` and ``bundle`` of what runs, ``try`` (the directory on trial)
and ``last`` (the outcome of the last update: result, version, bundle,
reason). A rollout takes "committed", never "installed", as success.
"""


def app_file(name):
    """``name`` in the running application directory: the root in the
    flat layout, ``a`` or ``b`` in the A/B one (otaboot.py)."""
    import firmware

    parts = firmware.__file__.rsplit("/", 2)
    return (parts[0] + "/" + name) if len(parts) == 3 and parts[0] else name


def running_dir():
    """The running application directory, None in the flat layout."""
    d = app_file("x")
    return d[:-2] if "/" in d else None


def get_topic(dev):
    return "edgefw/%s/ota/get" % dev


def status_topic(dev):
    return "edgefw/%s/ota/status" % dev


def publish_status(up, st, state, running, **extra):
    """Publish the status (retained); False when not connected."""
    if not up.connected:
        return False
    from firmware import cbor

    m = {
        "dev": up.device,
        "state": state,
        "dir": running,
        "version": st.get("version"),
        "bundle": st.get("bundle"),
        "try": st.get("try"),
        "boots": st.get("boots", 0),
        "last": st.get("last"),
    }
    if running == st.get("try"):
        m["version"] = st.get("try_version")
        m["bundle"] = st.get("try_bundle")
    m.update(extra)
    up.client.publish(status_topic(up.device), cbor.dumps(m), 1, True)
    return True
