"""The safety function: the interlock, its set-up from the config, its event names."""
