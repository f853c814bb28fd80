"""The store: the journal on disk, its recovery, and the reading side the uplink uses."""
