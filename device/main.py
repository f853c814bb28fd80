# edgefw main.py: the application directory this boot runs (otaboot.py),
# then the firmware (firmware/device.py says what it does)
import sys

import otaboot

trying = otaboot.choose() is not None and (otaboot.read() or {}).get("try") is not None
del otaboot, sys.modules["otaboot"]

try:
    from firmware.device import main

    main()
except Exception as e:
    if not trying:
        raise
    # a new directory that crashes: reset, so the boot counter rolls it back
    sys.print_exception(e)
    try:
        import machine

        machine.reset()
    except (ImportError, AttributeError):
        sys.exit(3)  # the virtual ESP32 (firmware.device.RESET_EXIT)
