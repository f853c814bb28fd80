"""``machine.UART`` on a Linux serial port, through pyserial.

    u = LinuxUART("/dev/serial0", baudrate=9600)
    u.write(b"...")
    if u.any():
        data = u.read(32)

Reads never block: ``read`` returns what has arrived (up to ``n`` bytes)
or None, as ``machine.UART.read`` with ``timeout=0`` does, so a sensor
that stops sending is seen as stale by the loop rather than stalling it.
"""


class LinuxUART:
    def __init__(self, device, baudrate=9600, serial=None):
        if serial is None:
            import serial as pyserial

            serial = pyserial.Serial(device, baudrate=baudrate, timeout=0, write_timeout=0)
        self.device = device
        self.port = serial

    def any(self):
        return self.port.in_waiting

    def read(self, n=None):
        avail = self.port.in_waiting
        if not avail:
            return None
        data = self.port.read(avail if n is None else min(n, avail))
        return data or None

    def readinto(self, buf):
        data = self.read(len(buf))
        if not data:
            return None
        buf[: len(data)] = data
        return len(data)

    def write(self, buf):
        return self.port.write(buf)

    def close(self):
        self.port.close()
