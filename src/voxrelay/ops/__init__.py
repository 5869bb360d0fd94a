"""Running it: metrics, logs, graceful drain, GC tuning."""
