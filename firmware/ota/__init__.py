"""Updates over the network on the ESP32 (docs/updates.md, "ESP32: updates
over the network"). Nothing here is imported by the loop until an offer
arrives on the device's command topic, and it is dropped again after."""
