"""Journal records as JSON: bytes become hex strings."""


def plain(v):
    if isinstance(v, (bytes, bytearray)):
        import binascii

        return binascii.hexlify(v).decode()
    if isinstance(v, dict):
        return dict((k, plain(x)) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v
