"""Forwarding the journal: batches over MQTT, seals, receipts (both targets)."""
