"""Brings a bench target to ``ready``: the runtime answers and reports
its board. States: ``unknown`` → ``off`` → ``ready``; a transition to
the state the target is already in does nothing.

On targets that are flashed (the esp32 runtime), ``ready`` is where the
bundle is flashed, and only when the hash the device reports differs
from the bundle's (``flash``: what happened); on a board over SSH it is
where this tree's packages are copied when the copy there differs. A
virtual ESP32 (``VirtualESP32Driver``) is started first when its port is
absent; the emulated Pi (``QEMUPiDriver``) is booted first."""

import enum

import attr
from labgrid.factory import target_factory
from labgrid.step import step
from labgrid.strategy import Strategy, StrategyError


class State(enum.Enum):
    unknown = 0
    off = 1
    ready = 2


@target_factory.reg_driver
@attr.s(eq=False)
class EdgefwStrategy(Strategy):
    bindings = {"runner": "EdgefwRunDriver", "device": {"VirtualESP32Driver", "QEMUPiDriver", None}}
    status = attr.ib(default=State.unknown)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.info = None
        self.flash = None

    @step(args=["status"])
    def transition(self, status):
        if not isinstance(status, State):
            status = State[status]
        if status == State.unknown:
            raise StrategyError("can not transition to %s" % status)
        if status == self.status:
            return
        if status == State.off:
            self.target.activate(self.runner)
            self.runner.off()
        elif status == State.ready:
            if self.device is not None:
                self.target.activate(self.device)
            self.target.activate(self.runner)
            self.flash = self.runner.prepare()
            board = self.runner.runtime.board
            self.info = self.runner.call("info", "describe", board=board, timeout=60.0)
            if self.info.get("board") != board:
                raise StrategyError("the target runs board %r, the environment says %r" % (self.info.get("board"), board))
        self.status = status
