"""Open the target's board as the firmware does."""


def open_hw(board, sensors=None):
    from firmware.config import load_config
    from hal.backend import open_board

    cfg = load_config(None)
    return open_board(board, sensors=cfg["sensors"] if sensors is None else sensors), cfg
