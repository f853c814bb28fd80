"""The firmware: one loop, sense -> interlock -> inference -> record.

Dual-target: runs on MicroPython and CPython. ``firmware.app`` is the
entry point on both (``edgefw run`` on CPython wraps it).
"""
