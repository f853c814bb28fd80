"""Features of a window of samples, for the vibration models.

    f = features(window, rate_hz)      # [rms, peak, e0, e1, e2, e3]

``window``: integer samples (milli-g) of one axis, oldest first. The mean
(gravity, sensor offset) is removed first; ``rms`` and ``peak`` are then in
g, and ``e0..e3`` are the signal's energy in four equal bands from 0 to
the Nyquist frequency (a direct DFT: windows are short), as fractions of the
total. Runs on both targets; it allocates, so it runs in the inference
stage, never in the safety path.
"""

import math

N_FEATURES = 6
BANDS = 4


def features(window, rate_hz=100):
    n = len(window)
    mean = sum(window) / n
    x = [(v - mean) / 1000.0 for v in window]
    rms = math.sqrt(sum(v * v for v in x) / n)
    peak = max(abs(v) for v in x)
    half = n // 2
    energy = [0.0] * BANDS
    for k in range(1, half + 1):
        re = 0.0
        im = 0.0
        w = 2 * math.pi * k / n
        for i in range(n):
            re += x[i] * math.cos(w * i)
            im -= x[i] * math.sin(w * i)
        band = min(BANDS - 1, (k - 1) * BANDS // half)
        energy[band] += re * re + im * im
    total = sum(energy) or 1.0
    return [rms, peak] + [e / total for e in energy]


def quantize(values, scale, zero_point):
    """Real values to int8 with a tensor's scale and zero point."""
    out = []
    for v in values:
        q = int(math.floor(v / scale + 0.5)) + zero_point
        out.append(-128 if q < -128 else (127 if q > 127 else q))
    return out
