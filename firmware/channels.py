"""Channels: what each sensor type measures, and the integer scale.

Kept apart from ``firmware.config`` so the checker can be unloaded after
start-up on small heaps; everything the running loop needs is here.
"""

SENSOR_TYPES = {
    "bme280": ("temperature_c", "humidity_pct", "pressure_hpa"),
    "adxl345": ("accel_x_g", "accel_y_g", "accel_z_g"),
}


def scale(v):
    """Real units to integer thousandths."""
    return int(round(v * 1000))


def channel_names(cfg):
    """``sensor.quantity`` for every channel, in sensor then quantity order."""
    out = []
    for s in cfg["sensors"]:
        for q in SENSOR_TYPES[s["type"]]:
            out.append(s["name"] + "." + q)
    return out
