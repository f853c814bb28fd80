"""Code that runs on the bench target (CPython or MicroPython): each
function does one hardware-facing check there and returns a JSON-able
result; the tests in bench/tests assert on it from the host::

    target.get_driver("EdgefwRunDriver").call("hal", "pin_roles", board="sim")
"""
