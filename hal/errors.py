"""The one error hierarchy of edgefw.

Every error edgefw raises on purpose is an ``EdgefwError``. Each also derives
from the built-in exception a caller would already catch for that kind of
fault, so ``except ValueError`` still works for bad input and
``except OSError`` for hardware faults::

    from hal.errors import ConfigError
    try:
        cfg = load_config("edgefw.json")
    except ConfigError as e:
        print(e)   # names the file, the field and what was expected

MicroPython allows only one built-in base per class, so there each error
derives from its built-in alone and ``EdgefwError`` is the tuple of them:
``except EdgefwError`` and ``isinstance(e, EdgefwError)`` work the same on
both targets; only CPython can ``raise EdgefwError(...)`` itself.
"""

import sys

if sys.implementation.name == "micropython":
    _Value = ValueError
    _OS = OSError
    _Runtime = RuntimeError
else:

    class EdgefwError(Exception):
        """Base of every error edgefw raises on purpose."""

    class _Value(EdgefwError, ValueError):
        pass

    class _OS(EdgefwError, OSError):
        pass

    class _Runtime(EdgefwError, RuntimeError):
        pass


class ConfigError(_Value):
    """A configuration or scenario file is unreadable or has a bad field."""

    def __init__(self, source, field, expected, got=None):
        self.source = source
        self.field = field
        self.expected = expected
        msg = "%s: field '%s': expected %s" % (source, field, expected)
        if got is not None:
            msg += ", got %r" % (got,)
        super().__init__(msg)


class BoardError(_Value):
    """Unknown board, or a role the board does not have."""


class CBORError(_Value):
    """Malformed or unsupported CBOR; the only error ``firmware.cbor``
    decoding raises."""


class ModelError(_Value):
    """A model file that is malformed or uses what the interpreter lacks."""


class BackendUnavailable(_Runtime):
    """A backend cannot be loaded here: a board's hardware, or an inference
    runtime that is not installed."""


class SensorError(_OS):
    """A sensor is missing or answered with the wrong identity."""


class JournalError(_OS):
    """The journal cannot be opened or written."""


if sys.implementation.name == "micropython":
    EdgefwError = (ConfigError, BoardError, CBORError, ModelError, BackendUnavailable, SensorError, JournalError)
