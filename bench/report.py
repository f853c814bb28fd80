"""The bench run's report: one timeline per scenario, drawn from the
journal's records (matplotlib, Agg), and an index.html showing them.

    write_report("bench-report", scenarios, title="...")

A scenario is a probe's result (bench/probes/faults.py): ``records``
(the journal), ``pins`` (``[t_us, role, level]``), ``limits`` (channel →
high/low), ``trips``, ``duration_us``.
"""

import html
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _steps(pins, role, end_us, initial=0):
    xs, ys, v = [0.0], [initial], initial
    for t, n, lv in pins:
        if n == role:
            xs += [t / 1e6, t / 1e6]
            ys += [v, lv]
            v = lv
    xs.append(end_us / 1e6)
    ys.append(v)
    return xs, ys


def plot_scenario(sc, path):
    """Draw one scenario's timeline into the PNG ``path``."""
    recs = sc["records"]
    wins = [r for r in recs if r.get("k") == "win"]
    end = sc.get("duration_us") or max([r.get("t", 0) for r in recs] + [1])
    chans = sorted({c for w in wins for c in w.get("ch", {})})
    env = [c for c in chans if c.startswith("env.temperature")]
    acc = [c for c in chans if ".accel_" in c]
    fig, axes = plt.subplots(3, 1, figsize=(9, 6.4), sharex=True, gridspec_kw={"height_ratios": [3, 2, 1.6]})
    for ax, group, unit in ((axes[0], env, "°C"), (axes[1], acc, "g")):
        for c in group:
            pts = [(w["t"] / 1e6, w["ch"][c]) for w in wins if c in w["ch"] and w["ch"][c][0]]
            if not pts:
                continue
            t = [p[0] for p in pts]
            line = ax.step(t, [p[1][2] / 1000 for p in pts], where="post", label=c + " (mean)")[0]
            ax.fill_between(t, [p[1][1] / 1000 for p in pts], [p[1][3] / 1000 for p in pts], step="post", alpha=0.2, color=line.get_color())
            for k, style in (("high", "--"), ("low", ":")):
                lim = sc.get("limits", {}).get(c, {}).get(k)
                if lim is not None:
                    ax.axhline(lim, ls=style, color=line.get_color(), lw=1, label="%s %s %g" % (c.split(".")[1], k, lim))
        ax.set_ylabel(unit)
        if group:
            ax.legend(loc="upper left", fontsize=7, ncol=2)
    ax = axes[2]
    for role, off, color in (("RELAY_PERMIT", 0.0, "tab:green"), ("ESTOP", 1.5, "tab:red"), ("RELAY_READBACK", 3.0, "tab:gray")):
        xs, ys = _steps(sc.get("pins", []), role, end, 0)
        ax.step(xs, [off + y for y in ys], where="post", color=color, label=role)
    ax.set_yticks([0, 1, 1.5, 2.5, 3, 4], ["0", "permit 1", "0", "e-stop 1", "0", "readback 1"], fontsize=7)
    ax.set_xlabel("t (s, virtual)")
    for r in recs:
        k, t = r.get("k"), r.get("t")
        if t is None or k not in ("trip", "reset", "reset_refused", "cause"):
            continue
        color = {"trip": "red", "reset": "green", "reset_refused": "orange", "cause": "purple"}[k]
        for a in axes:
            a.axvline(t / 1e6, color=color, lw=1, alpha=0.7)
        label = k
        if k in ("trip", "cause", "reset_refused"):
            label += ": " + ", ".join(n for _c, n in r.get("causes", []))[:36]
        axes[0].annotate(label, (t / 1e6, 1.0), xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right", fontsize=7, color=color)
    axes[0].set_title(sc.get("name", ""), fontsize=10)
    axes[-1].set_xlim(0, end / 1e6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(out, scenarios, title):
    """PNG per scenario and ``index.html`` in ``out``; returns the PNG paths."""
    pngs = []
    parts = ["<!doctype html><meta charset=utf-8><title>%s</title><h1>%s</h1>" % (html.escape(title), html.escape(title))]
    for sc in scenarios:
        name = sc.get("name", "scenario%d" % len(pngs))
        png = os.path.join(out, name + ".png")
        plot_scenario(sc, png)
        pngs.append(png)
        trips = ", ".join("%s at %.3f s" % (t["cause"], t["t_us"] / 1e6) for t in sc.get("trips", [])) or "none"
        parts.append("<h2>%s</h2><p>trips: %s</p><img src=%s>" % (html.escape(name), html.escape(trips), html.escape(os.path.basename(png))))
    if not scenarios:
        parts.append("<p>no scenario ran on this target (see the JUnit XML for the skips and their reasons)</p>")
    with open(os.path.join(out, "index.html"), "w") as f:
        f.write("\n".join(parts))
    return pngs
