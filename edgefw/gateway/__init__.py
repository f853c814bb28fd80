"""The gateway tier: a site's Pi or Jetson between its nodes and the next
tier (docs/gateway.md)."""
