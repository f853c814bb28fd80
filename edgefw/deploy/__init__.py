"""Putting edgefw on boards: signed bundles, flashing, install over SSH, SD images."""
