# edgefw main.py: start the firmware (firmware/device.py says what it does)
from firmware.device import main

main()
