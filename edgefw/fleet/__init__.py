"""Fleet identity: a fleet CA, a registry of devices and services, their
credentials, and the broker's TLS-only configuration with per-identity ACLs
made from the registry (docs/security.md).

    edgefw fleet init DIR [--broker-host H ...] [--listen ADDR:PORT]
    edgefw fleet add DEVICE --board B [--label k=v ...] [--out CREDDIR] [--csr FILE] [--reload PIDFILE]
    edgefw fleet add-service NAME --role ingest|gateway [--devices a,b] [--csr FILE] [--reload PIDFILE]
    edgefw fleet revoke NAME [--reason TEXT] [--reload PIDFILE]
    edgefw fleet rotate NAME [--csr FILE] [--reload PIDFILE]
    edgefw fleet firmware DEVICE --sha256 HEX | --clear
    edgefw fleet list
    edgefw fleet broker-config [--reload PIDFILE]
    edgefw fleet ingest-keys [--out FILE] [--all]

(``--dir DIR`` before the sub-command, or $EDGEFW_FLEET, names the fleet.)
"""

from hal.errors import EdgefwError


class FleetError(EdgefwError, RuntimeError):
    """A fleet operation that cannot go ahead: the message names the file
    or the entry and what to do about it."""

