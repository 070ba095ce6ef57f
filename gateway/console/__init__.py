"""The ops console (issue 14): its own listener, apart from partner traffic, with /health,
/ready and /metrics (docs/observability.md); the counters every process keeps (metrics)."""
