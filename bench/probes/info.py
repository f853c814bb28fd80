"""What the target is: implementation, word size, board and features."""

import sys


def describe(board):
    import boards

    b = boards.get(board)
    return {
        "impl": sys.implementation.name,
        "platform": sys.platform,
        "maxsize": sys.maxsize,
        "board": b.NAME,
        "family": b.FAMILY,
        "features": list(b.FEATURES),
        "roles": {"i2c": sorted(b.I2C), "uart": sorted(b.UART), "pins": sorted(b.PINS)},
    }
