"""A virtual I2C bus with the methods of ``machine.I2C``.

    bus = SimI2C()
    bus.attach(BME280Model(0x76))
    bus.readfrom_mem_into(0x76, 0xD0, buf)

An address with no device raises ``OSError(ENODEV)`` as the ESP32 port does
on a NACK. Register transactions are delegated to the chip model, which may
raise ``OSError(EIO)`` from an injected fault.
"""

import errno


class SimI2C:
    def __init__(self, bus_id=0):
        self.bus_id = bus_id
        self.devices = {}
        self.transactions = 0
        self._nodev = OSError(errno.ENODEV, "no device at this address")

    def attach(self, model):
        self.devices[model.address] = model
        return model

    def _dev(self, addr):
        d = self.devices.get(addr)
        if d is None or d.absent:
            e = self._nodev
            if hasattr(e, "__traceback__"):
                e.__traceback__ = None
            raise e
        return d

    def readfrom_mem_into(self, addr, memaddr, buf):
        self.transactions += 1
        self._dev(addr).read_into(memaddr, buf)

    def writeto_mem(self, addr, memaddr, buf):
        self.transactions += 1
        self._dev(addr).write(memaddr, buf)

    def readfrom(self, addr, nbytes):
        buf = bytearray(nbytes)
        self.readfrom_mem_into(addr, self._dev(addr).pointer, buf)
        return bytes(buf)

    def writeto(self, addr, buf):
        d = self._dev(addr)
        self.transactions += 1
        if len(buf) == 0:
            return 1
        d.pointer = buf[0]
        if len(buf) > 1:
            d.write(buf[0], buf[1:])
        return len(buf)

    def scan(self):
        return sorted(a for a, d in self.devices.items() if not d.absent)
