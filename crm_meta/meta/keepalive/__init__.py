"""The keep-alive (tests/meta/keepalive/): probing (asks Meta about a token), verdicts (records
what Meta said on the row), deadlines (which warnings are due), sweep, leases (cluster lock,
claims, fencing) and writeback (probe workers, batched write-backs)."""
