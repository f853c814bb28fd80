"""The one error a database backend raises; a leaf, so the backends and the
table that chooses them import it without importing each other."""

from hal.errors import EdgefwError


class StoreError(EdgefwError, RuntimeError):
    """A write that did not commit. ``reason`` is one word for metrics
    (unavailable, auth, read_only, disk_full, error); the batches stay
    unreceipted and are written again later."""

    def __init__(self, reason, msg):
        RuntimeError.__init__(self, msg)
        self.reason = reason
