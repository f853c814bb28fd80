"""Hardware abstraction layer.

The interfaces are the subset of MicroPython's ``machine`` that edgefw uses,
so on a microcontroller the native ``machine`` objects are the backend as
they are. ``hal.backend.open_board()`` picks the backend for this machine::

    from hal.backend import open_board
    hw = open_board()            # EDGEFW_BOARD overrides detection
    i2c = hw.i2c("I2C0")
    permit = hw.pin("RELAY_PERMIT")

See ``hal/interfaces.py`` for the methods a backend must provide.
"""
