"""Seeded mutation of JSON-like documents, the same on both targets
(a xorshift generator of our own: no ``random`` module differences).

    r = Rand(1)
    doc = mutate(r, base)      # a changed deep copy of base
"""

NAN = float("nan")
INF = float("inf")
# values a careless or hostile file might hold
POOL = (
    NAN,
    INF,
    -INF,
    0,
    1,
    -1,
    0.5,
    -0.001,
    2,
    7,
    10,
    99,
    100,
    1000,
    65535,
    65536,
    99999,
    1000000,
    1000000.5,
    -1000000.5,
    3000000.0,
    2147483.648,
    1 << 31,
    1 << 62,
    1e30,
    -1e30,
    "",
    "x",
    "a/b",
    "#",
    "+",
    "h:0",
    "h:99999",
    "127.0.0.1",
    "127.0.0.1:1883",
    "env.temprature_c",
    None,
    True,
    False,
    [],
    {},
    [1],
    [1, 2],
    [2, 1],
    {"x": 1},
)


class Rand:
    """xorshift32: the same numbers on every target."""

    def __init__(self, seed):
        self.s = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1

    def next(self):
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self.s = s
        return s

    def below(self, n):
        return self.next() % n

    def pick(self, seq):
        return seq[self.below(len(seq))]


# deeper than this, values are shared, not copied, and never mutated: a
# deeply nested one would exhaust MicroPython's stack here
DEPTH = 8


def copy(v, d=0):
    if d > DEPTH:
        return v
    if isinstance(v, dict):
        return {k: copy(x, d + 1) for k, x in v.items()}
    if isinstance(v, list):
        return [copy(x, d + 1) for x in v]
    return v


def paths(v, at=()):
    """Every path into ``v`` (tuples of keys and indices) down to DEPTH,
    root excluded."""
    out = []
    if len(at) >= DEPTH:
        return out
    items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else ()
    for k, x in items:
        p = at + (k,)
        out.append(p)
        out.extend(paths(x, p))
    return out


def deep(n):
    v = 0
    for _ in range(n):
        v = [v]
    return v


def _value(r, old):
    k = r.below(10)
    if k < 4 and isinstance(old, (int, float)) and not isinstance(old, bool):
        # near the old value: the checks between fields get their turn
        if k < 2:
            return old * r.pick((-1, 0, 0.5, 0.9, 1.1, 2, 10, 1000, 1000000))
        return old + r.pick((-1, 1, -10, 10, -0.0005, 0.0005))
    if k == 4:
        return deep(r.pick((3, 50, 400)))
    return r.pick(POOL)


def mutate(r, base, n=None):
    """A copy of ``base`` with 1 to 3 changes (mostly 1): a value replaced, a key
    removed or an unknown key added."""
    doc = copy(base)
    for _ in range(n or r.pick((1, 1, 1, 2, 3))):
        ps = paths(doc)
        if not ps:
            break
        p = r.pick(ps)
        parent = doc
        for k in p[:-1]:
            parent = parent[k]
        op = r.below(8)
        if op == 0 and isinstance(parent, dict):
            del parent[p[-1]]
        elif op == 1 and isinstance(parent, dict):
            parent["zz_" + str(r.below(100))] = r.pick(POOL)
        else:
            parent[p[-1]] = _value(r, parent[p[-1]])
    return doc
