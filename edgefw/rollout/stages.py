"""Stage arithmetic, kept free of I/O so it can be checked by properties.

A stage size is cumulative: ``[1, "10%", "50%", "100%"]`` means one
device, then enough devices that 10 % of the fleet has been offered the
update, and so on. A percentage is rounded *up* (10 % of 15 is 2) so a
stage never covers less than it says; every stage holds at least one
device while any are left, a stage is never smaller than the one before
it, and none goes past the fleet. Stages that come out equal to the one
before add nobody and are dropped.

The failure rule: with F failed out of J judged devices (cumulative over
the rollout), a stage failure threshold of P % and a minimum sample of M,
the rollout stops when

    F / max(J, M) > P / 100          (exceeded, not equalled)

so a small first stage is judged as if M devices had been tried: one
failure among 2 devices with M = 10 is a rate of 10 %, not 50 %. Equal
to the threshold goes on, as with Ansible's max_fail_percentage.
"""

from fractions import Fraction


class StageError(ValueError):
    pass


def parse_size(size):
    """("count", n) or ("percent", Fraction) for one stage size."""
    if isinstance(size, bool):
        raise StageError("a stage size is a positive count or a percentage like \"10%%\", not %r" % (size,))
    if isinstance(size, int):
        if size < 1:
            raise StageError("a stage count must be at least 1, not %d" % size)
        return ("count", size)
    if isinstance(size, str) and size.endswith("%"):
        try:
            p = Fraction(size[:-1].strip())
        except (ValueError, ZeroDivisionError):
            raise StageError("%r is not a percentage" % size)
        if not 0 < p <= 100:
            raise StageError("a stage percentage must be above 0 and at most 100, not %s" % size)
        return ("percent", p)
    raise StageError("a stage size is a positive count or a percentage like \"10%%\", not %r" % (size,))


def parse_percent(value):
    """A threshold: a number or "N%", 0..100, as a Fraction."""
    if isinstance(value, bool):
        raise StageError("not a percentage: %r" % (value,))
    if isinstance(value, str):
        if not value.endswith("%"):
            raise StageError("a percentage is written \"N%%\", not %r" % value)
        value = value[:-1].strip()
    try:
        p = Fraction(value) if not isinstance(value, float) else Fraction(str(value))
    except (ValueError, TypeError, ZeroDivisionError):
        raise StageError("not a percentage: %r" % (value,))
    if not 0 <= p <= 100:
        raise StageError("a percentage is between 0 and 100, not %s" % value)
    return p


def cumulative(n, sizes):
    """Cumulative device counts, one per stage that adds devices (dropped
    stages add none); the last is at most ``n``. Returns [(stage index,
    cumulative count)]."""
    out = []
    prev = 0
    for i, s in enumerate(sizes):
        kind, v = parse_size(s)
        if kind == "count":
            c = v
        else:
            c = -((-v * n) // 100)  # ceiling of v * n / 100, exact on Fractions
            c = int(c)
        c = min(max(c, 1), n)
        if c > prev:
            out.append((i, c))
            prev = c
    return out


def batches(n, sizes):
    """[(stage index, number of new devices)]: what each stage adds."""
    prev = 0
    out = []
    for i, c in cumulative(n, sizes):
        out.append((i, c - prev))
        prev = c
    return out


def exceeded(failed, judged, threshold, min_sample):
    """True when ``failed`` of ``judged`` crosses ``threshold`` percent
    under the rule in the module docstring (integer arithmetic: no float
    rounding at the boundary)."""
    if failed < 0 or judged < failed or min_sample < 1:
        raise StageError("impossible counts: %d failed of %d judged, minimum sample %d" % (failed, judged, min_sample))
    return Fraction(failed * 100) > Fraction(threshold) * max(judged, min_sample)


def pct(f):
    """A percentage for people: 12.5, 20, 0.3333."""
    return ("%.4f" % float(f)).rstrip("0").rstrip(".")


def ansible_percentage(threshold, batch, min_sample):
    """The max_fail_percentage that makes Ansible's rule (failed / batch
    * 100 > value) stop a batch exactly where ``exceeded`` would stop it
    judged on that batch alone."""
    return Fraction(threshold) * max(batch, min_sample) / batch
