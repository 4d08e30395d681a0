"""Operating the service: health, readiness and /metrics, log lines and their redaction."""
