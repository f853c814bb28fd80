"""What the two MQTT clients of the uplink share: their settings.
``firmware.linux.paho_client`` (CPython) and ``firmware.uplink.umqtt_client`` (MicroPython)
add ``connect``, ``publish``, ``wait``, ``receipts`` and ``disconnect``.
``receipt_topic`` (``edgefw/<id>/receipt``), when the uplink sets it, is
subscribed at connect, and so is the command topic beside it
(``edgefw/<id>/cmd``): what arrives there (update offers and chunks,
``firmware.ota``) is kept in ``commands``, apart from the receipts: a
list from the first command on (None before: no heap for it in the
loop's normal run)."""


class ClientBase:
    commands = None

    def __init__(self, host, port=1883, client_id="edgefw", username=None, password=None, tls=None, timeout_ms=5000):
        self.host = host
        self.port = port
        self.client_id = client_id
        self.username = username
        self.password = password
        self.tls = tls
        self.timeout_s = timeout_ms / 1000
        self.receipt_topic = None
