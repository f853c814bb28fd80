"""Brings a bench target to ``ready``: the runtime answers and reports
its board. States: ``unknown`` → ``off`` → ``ready``; a transition to
the state the target is already in does nothing.

On targets that are flashed (the ESP32 work), ``ready`` is where the
bundle is flashed, and only when the hash the device reports differs
from the bundle's: that is one more binding here, no change to tests."""

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
    bindings = {"runner": "EdgefwRunDriver"}
    status = attr.ib(default=State.unknown)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.info = None

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
            self.target.activate(self.runner)
            board = self.runner.runtime.board
            self.info = self.runner.call("info", "describe", board=board, timeout=60.0)
            if self.info.get("board") != board:
                raise StrategyError("the target runs board %r, the environment says %r" % (self.info.get("board"), board))
        self.status = status
