"""What the CBOR modules share: the ``Tag`` and ``Simple`` types and the
nesting bound. It imports none of them, so cbor_decode, cbor_rare and
linux/cbor_cpython import it, and imports run one way: from
``firmware.cbor`` to the module it loads when needed, and from those to
this one. ``firmware.cbor`` itself does not load it (a device that only
writes records keeps neither these classes nor this module on its heap).
"""

MAX_DEPTH = 64


class Tag:
    def __init__(self, tag, value):
        self.tag = tag
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Tag) and other.tag == self.tag and other.value == self.value

    def __repr__(self):
        return "Tag(%r, %r)" % (self.tag, self.value)


class Simple:
    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Simple) and other.value == self.value

    def __repr__(self):
        return "Simple(%r)" % (self.value,)


UNDEFINED = Simple(23)
