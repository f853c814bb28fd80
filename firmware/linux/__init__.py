"""Product code that runs on a host (CPython) only: never in a device image."""
