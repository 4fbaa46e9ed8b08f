"""The daemon's HTTP surface: status page, OAuth callback, /healthz and /metrics."""
