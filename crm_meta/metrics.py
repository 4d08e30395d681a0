"""Prometheus metrics of the service (exposed at /metrics)."""

from prometheus_client import Counter, Gauge, Histogram

OAUTH_REQUESTS = Counter("meta_oauth_requests_total", "OAuth endpoint calls", ["endpoint", "status"])
OAUTH_ERRORS = Counter("meta_oauth_errors_total", "OAuth flow failures", ["reason"])
TOKEN_VALIDATIONS = Counter("meta_token_validations_total", "Token checks with Meta", ["result"])
GRAPH_CALLS = Counter("meta_graph_calls_total", "Graph API calls", ["endpoint", "outcome"])
GRAPH_LATENCY = Histogram("meta_api_response_time_seconds", "Graph API latency", ["endpoint"])
TOKEN_EXPIRY_HOURS = Gauge("meta_token_expires_in_hours", "Hours until a tenant's token expires",
                           ["tenant"])
CONNECTIONS = Gauge("meta_connections", "Stored Meta connections by status", ["status"])
