"""Where ingest commits: one module per database, chosen by the ``--db``
URL's scheme. A backend module offers ``open(target, log)`` returning a
store with ``write(batches)`` (one transaction, committed and durable on
return, or StoreError and nothing of it kept), ``seqs(device)`` and
``close()``."""

import os

from edgefw.ingest.db.errors import StoreError  # noqa: F401  (the backends' one error, for callers)

# scheme -> (module, what the rest of the URL is)
BACKENDS = {
    "sqlite": ("edgefw.ingest.db.sqlite", "a file path: sqlite:PATH, or just PATH"),
    "postgresql": ("edgefw.ingest.db.postgres", "a libpq URL: postgresql://USER:PASSWORD@HOST:PORT/DBNAME"),
}
ALIASES = {"postgres": "postgresql"}


def parse(text):
    """(scheme, target) of a ``--db`` value, or ValueError saying what is
    wrong and what to write instead."""
    scheme, sep, rest = text.partition(":")
    scheme = ALIASES.get(scheme.lower(), scheme.lower()) if sep else ""
    if scheme == "postgresql":
        from edgefw.ingest.db.postgres import check_url

        return scheme, check_url(text)
    if sep and len(scheme) > 1 and "/" not in scheme and scheme not in BACKENDS and rest.startswith("//"):
        raise ValueError("unknown database %r: use %s" % (scheme, "; or ".join("%s (%s)" % (k, v[1]) for k, v in BACKENDS.items())))
    path = rest if scheme == "sqlite" else text
    if scheme == "sqlite" and path.startswith("//"):
        path = path[2:]
    if not path:
        raise ValueError("no file named: write sqlite:PATH or a path")
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise ValueError("%r: directory %s does not exist" % (text, d))
    if os.path.isdir(path):
        raise ValueError("%r is a directory; name a file in it" % text)
    return "sqlite", path


def open_store(text, log=None):
    import importlib

    scheme, target = parse(text)
    return importlib.import_module(BACKENDS[scheme][0]).open(target, log)
