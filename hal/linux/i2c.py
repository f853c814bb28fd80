"""``machine.I2C`` on a Linux ``/dev/i2c-N`` adapter, through smbus2.

    bus = LinuxI2C("/dev/i2c-1")
    buf = bytearray(8)
    bus.readfrom_mem_into(0x76, 0xF7, buf)

Register reads and writes go as SMBus I2C-block transfers when the adapter
offers them (``i2c-stub`` and many SMBus controllers offer nothing else) and
the transfer fits in 32 bytes; otherwise as one combined ``I2C_RDWR``
transaction (write the register address, repeated start, read). The
combined messages are built once per (address, register, length) and
reused.

Errors are ``OSError`` with an errno: a device that does not acknowledge
(the kernel says ENXIO or EREMOTEIO, depending on the controller) is
ENODEV, as ``hal.interfaces`` promises; anything else keeps the kernel's
errno (EIO, ETIMEDOUT, ...). The interlock treats any of them as an unsafe
sensor.
"""

import ctypes
import errno

_BLOCK_MAX = 32
_NACK = (errno.ENXIO, errno.EREMOTEIO)
_I2C_M_RD = 0x0001


def _os_error(e, what, addr, device):
    code = errno.ENODEV if e.errno in _NACK else (e.errno or errno.EIO)
    return OSError(code, "%s at 0x%02x on %s: %s" % (what, addr, device, e.strerror or errno.errorcode.get(code, code)))


class LinuxI2C:
    def __init__(self, device, smbus=None):
        """``device`` is a path (``/dev/i2c-1``); ``smbus`` an open
        ``smbus2.SMBus``-like object to use instead of opening it."""
        self.device = device
        if smbus is None:
            import smbus2

            try:
                smbus = smbus2.SMBus(device)
            except OSError as e:
                raise OSError(e.errno or errno.ENODEV, "cannot open I2C adapter %s: %s" % (device, e.strerror or e))
        self.bus = smbus
        from smbus2 import I2cFunc, i2c_msg

        self._msg = i2c_msg
        funcs = int(smbus.funcs)
        self.plain_i2c = bool(funcs & I2cFunc.I2C)
        self.block_read = bool(funcs & I2cFunc.SMBUS_READ_I2C_BLOCK)
        self.block_write = bool(funcs & I2cFunc.SMBUS_WRITE_I2C_BLOCK)
        self._reads = {}

    def _combined(self, addr, memaddr, n):
        key = (addr, memaddr, n)
        m = self._reads.get(key)
        if m is None:
            m = (self._msg.write(addr, [memaddr]), self._msg.read(addr, n))
            self._reads[key] = m
        return m

    def readfrom_mem_into(self, addr, memaddr, buf):
        n = len(buf)
        try:
            if self.block_read and n <= _BLOCK_MAX:
                data = self.bus.read_i2c_block_data(addr, memaddr, n)
                if len(data) != n:
                    raise OSError(errno.EIO, "short read: %d of %d bytes" % (len(data), n))
                buf[:] = bytes(data)
                return
            if not self.plain_i2c:
                raise OSError(errno.EOPNOTSUPP, "adapter has neither I2C-block reads of %d bytes nor plain I2C" % n)
            w, r = self._combined(addr, memaddr, n)
            self.bus.i2c_rdwr(w, r)
            ctypes.memmove((ctypes.c_char * n).from_buffer(buf), r.buf, n)
        except OSError as e:
            raise _os_error(e, "read of register 0x%02x" % memaddr, addr, self.device)

    def writeto_mem(self, addr, memaddr, buf):
        try:
            if self.block_write and len(buf) <= _BLOCK_MAX:
                self.bus.write_i2c_block_data(addr, memaddr, list(buf))
                return
            self.bus.i2c_rdwr(self._msg.write(addr, bytes((memaddr,)) + bytes(buf)))
        except OSError as e:
            raise _os_error(e, "write of register 0x%02x" % memaddr, addr, self.device)

    def readfrom(self, addr, nbytes):
        try:
            if self.plain_i2c:
                r = self._msg.read(addr, nbytes)
                self.bus.i2c_rdwr(r)
                return bytes(r)
            return bytes(self.bus.read_byte(addr) for _ in range(nbytes))
        except OSError as e:
            raise _os_error(e, "read", addr, self.device)

    def writeto(self, addr, buf):
        try:
            if self.plain_i2c:
                self.bus.i2c_rdwr(self._msg.write(addr, bytes(buf)))
            elif len(buf) == 1:
                self.bus.write_byte(addr, buf[0])
            else:
                self.bus.write_i2c_block_data(addr, buf[0], list(buf[1:]))
        except OSError as e:
            raise _os_error(e, "write", addr, self.device)
        return len(buf)

    def scan(self):
        """Addresses 0x08..0x77 that answer a one-byte read (as i2cdetect -r)."""
        found = []
        for a in range(0x08, 0x78):
            try:
                self.bus.read_byte(a)
            except OSError:
                continue
            found.append(a)
        return found

    def close(self):
        self.bus.close()
