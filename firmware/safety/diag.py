"""Names of interlock causes and draining of its event ring: the parts of
the interlock that allocate, kept out of the module the safety path runs.

Diagnostic codes: 0x1000 + 16*channel + n (channel causes), 0x2000 +
16*sensor + n (sensor causes), 0x3000 + n (global causes), 0x4000 + group
(voting groups).
"""

# bit n of each cause mask, named; event kinds 1..4 as the interlock's ring holds them
CHANNEL_CAUSES = ("high", "low", "rate", "implausible")
SENSOR_CAUSES = ("bus", "stale")
GLOBAL_CAUSES = ("estop", "deadline", "stall", "readback", "inference", "site")
EVENT_NAMES = {1: "trip", 2: "reset", 3: "reset_refused", 4: "cause"}


def names(il, g, v, smasks, sbase, cmasks, cbase):
    out = []
    for k in range(il.n_votes):
        if v & (1 << k):
            out.append((0x4000 + k, "vote:" + il.vote_names[k]))
    for b in range(len(GLOBAL_CAUSES)):
        if g & (1 << b):
            out.append((0x3000 + b, GLOBAL_CAUSES[b]))
    for s in range(il.ns):
        m = smasks[sbase + s]
        for b in range(len(SENSOR_CAUSES)):
            if m & (1 << b):
                out.append((0x2000 + 16 * s + b, il.sensors[s] + ":" + SENSOR_CAUSES[b]))
    for i in range(il.n):
        m = cmasks[cbase + i]
        for b in range(len(CHANNEL_CAUSES)):
            if m & (1 << b):
                out.append((0x1000 + 16 * i + b, il.channels[i] + ":" + CHANNEL_CAUSES[b]))
    return out


def pop_events(il):
    out = []
    while il.ev_count:
        k = il.ev_head
        out.append((EVENT_NAMES[il.ev_kind[k]], il.ev_slot[k], names(il, il.ev_g[k], il.ev_v[k], il.ev_s, k * il.ns, il.ev_c, k * il.n)))
        # the ring's size is its own length: no import of the interlock
        il.ev_head = (k + 1) % len(il.ev_kind)
        il.ev_count -= 1
    return out
