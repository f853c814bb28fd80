# edgefw main.py: the application directory this boot runs (otaboot.py),
# then the firmware (firmware/device.py says what it does)
import sys

import otaboot

otaboot.choose()
del otaboot, sys.modules["otaboot"]

from firmware.device import main  # noqa: E402 (from the directory chosen above)

main()
