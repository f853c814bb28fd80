"""What the update's modules share: where the running application
directory is, the topics, and the status the device publishes
(``firmware.ota`` describes them)."""


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
    publish(up, status_topic(up.device), cbor.dumps(m))
    return True


# packet ids of what this module published, until their PUBACK is taken
_PIDS = []


def publish(up, topic, payload):
    """QoS 1, the uplink client's one kind (and not retained: the host
    asks for the status it missed, ``{"op": "status"}``)."""
    _PIDS.append(up.client.publish(topic, payload))


def pending():
    return bool(_PIDS)


def settle(up):
    """Take the PUBACKs of what was published here: an id left
    acknowledged in the client could later pass for a batch's. True when
    none is left."""
    c = up.client
    for pid in _PIDS[:]:
        if c.wait(pid, 0):
            _PIDS.remove(pid)
    return not _PIDS
