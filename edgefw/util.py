"""Small helpers shared by the host tools."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def version():
    """The installed edgefw's version, or why there is none."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("edgefw")
    except PackageNotFoundError:
        return "unknown (not installed)"
