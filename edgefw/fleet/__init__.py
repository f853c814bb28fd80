"""Fleet identity: a fleet CA, a registry of devices and services, their
credentials, and the broker's TLS-only configuration with per-identity ACLs
made from the registry (docs/security.md).

    edgefw fleet init DIR [--broker-host H ...] [--listen ADDR:PORT]
    edgefw fleet add DEVICE --board B [--label k=v ...] [--out CREDDIR]
    edgefw fleet add-service NAME --role ingest|gateway [--devices a,b]
    edgefw fleet revoke DEVICE [--reload PIDFILE]
    edgefw fleet rotate DEVICE
    edgefw fleet list
    edgefw fleet broker-config
    edgefw fleet ingest-keys [--out FILE]
"""


class FleetError(Exception):
    """A fleet operation that cannot go ahead: the message names the file
    or the entry and what to do about it."""
