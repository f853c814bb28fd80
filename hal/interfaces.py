"""The bus and pin interfaces a backend provides.

They are the subset of MicroPython's ``machine`` module that edgefw uses, so
on ESP32 ``machine.I2C``, ``machine.Pin`` and ``machine.WDT`` are the
backend with no wrapper. Linux and sim backends implement the same methods.
These classes document the contract; backends need not inherit from them.

I2C (must provide)::

    readfrom_mem_into(addr, memaddr, buf)   fill buf from a register
    writeto_mem(addr, memaddr, buf)
    readfrom(addr, nbytes) -> bytes
    writeto(addr, buf) -> int (acks)
    scan() -> list of addresses

Any of them raises ``OSError`` (errno EIO or ENODEV) when the device does
not answer; the interlock treats that as an unsafe sensor.

UART: ``read(n=None)``, ``write(buf)``, ``any()``.

Pin: ``Pin(id, mode, pull)``, ``value()`` / ``value(v)``, ``on()``,
``off()``; constants ``IN``, ``OUT``, ``PULL_UP``, ``PULL_DOWN``.

WDT: ``WDT(timeout=ms)``, ``feed()``. Once started it cannot be stopped,
as on the hardware.
"""


class I2C:
    def readfrom_mem_into(self, addr, memaddr, buf):
        raise NotImplementedError

    def writeto_mem(self, addr, memaddr, buf):
        raise NotImplementedError

    def readfrom(self, addr, nbytes):
        raise NotImplementedError

    def writeto(self, addr, buf):
        raise NotImplementedError

    def scan(self):
        raise NotImplementedError


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2

    def value(self, v=None):
        raise NotImplementedError

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class WDT:
    def feed(self):
        raise NotImplementedError
