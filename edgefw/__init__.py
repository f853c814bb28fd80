"""edgefw on a workstation or server: the ``edgefw`` command and what it
drives. What runs on a board lives in ``firmware``, ``hal`` and ``boards``
(``firmware.linux`` for a Linux board's CPython runtime); this package
never ships to a board.

- ``edgefw.cli``: the command table (``python -m edgefw``)
- ``edgefw.ingest``: the receiving end of the uplink
- ``edgefw.deploy``: bundles, flashing, install over SSH, SD images
- ``edgefw.build``: .mpy images, MicroPython libraries, models
- ``edgefw.emul``: the virtual ESP32, the 32-bit MicroPython, a broker
- ``edgefw.perf``: benchmarks
"""
