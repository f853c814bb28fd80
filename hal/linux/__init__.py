"""The Linux backend (CPython only): Raspberry Pi and Jetson boards.

Never imported on MicroPython: ``hal.backend`` loads it only for boards of
the ``linux`` family, and only on CPython.

    from hal.linux.hardware import LinuxHardware
    hw = LinuxHardware(boards.get("rpi4"))
    hw.i2c("I2C0")          # hal.linux.i2c.LinuxI2C on /dev/i2c-1 (smbus2)
    hw.pin("RELAY_PERMIT")  # hal.linux.gpio.LinuxPin, a libgpiod v2 line
    hw.uart("UART0")        # hal.linux.uart.LinuxUART (pyserial)
    hw.wdt(500)             # systemd's watchdog, else /dev/watchdog
"""
