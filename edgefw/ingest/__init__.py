"""Receiving the fleet's data: MQTT batches verified, committed, receipted."""
