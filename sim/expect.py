"""A scenario's ``expect`` block, checked against the trips of a run.

    from sim.expect import check_trips
    failures = check_trips(sc["expect"], fw.trips, fw.period_us)
    for line in failures:
        print(line)          # empty list: the run did what the file expects

Each expected trip must happen, in order, with that cause (the first one
named when several latch together) within one loop period after its
``at_s``; a trip the file does not list is a failure too.
"""


def _cause(t):
    return t["cause"].split("+")[0]


def check_trips(expect, trips, period_us):
    """Returns a list of failure lines; empty when the trips match."""
    out = []
    n = max(len(expect), len(trips))
    for i in range(n):
        w = expect[i] if i < len(expect) else None
        g = trips[i] if i < len(trips) else None
        if g is None:
            out.append("expected trip %d (%s at %.3f s) did not happen" % (i + 1, w["cause"], w["at_us"] / 1e6))
        elif w is None:
            out.append("unexpected trip %d: %s at %.3f s" % (i + 1, g["cause"], g["t_us"] / 1e6))
        elif _cause(g) != w["cause"]:
            out.append("trip %d: cause %s at %.3f s, expected %s" % (i + 1, g["cause"], g["t_us"] / 1e6, w["cause"]))
        elif not 0 <= g["t_us"] - w["at_us"] <= period_us:
            out.append(
                "trip %d (%s): at %.3f s, expected from %.3f s to %.3f s (one period)"
                % (i + 1, w["cause"], g["t_us"] / 1e6, w["at_us"] / 1e6, (w["at_us"] + period_us) / 1e6)
            )
    return out


def report(src, failures, write):
    """Writes a verdict line per failure (or one ``passed`` line)."""
    if not failures:
        write("%s: expect: passed\n" % src)
        return
    for line in failures:
        write("%s: expect: FAILED: %s\n" % (src, line))
