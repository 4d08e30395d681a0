"""What the tests of more than one area share, one module per concern; import from the module
(`from tests.helpers.users import bearer`), this package re-exports nothing.

- settings: the test app's configuration, its constants and files (ROOT, the catalogues)
- users: tenants with users, logging in, a CRM user's JWT, the browser-like client
- sandbox: what stands in for Meta (seeded ids, the control API, the connect flow, signed_request)
- responses: reading the product's answers (the error envelope, a page's CSRF token)
- database: rows as the database holds them, the migrations' script directory
- cli: running `flask ...` commands and judging their outcome
- keepalive: connections minted straight in the sandbox, sweeps
- waiting: polling for what a background thread or process does

Fixtures, and helpers the tests of one area share, live in that area's conftest.py (tests/'s own
when several areas use them; the deployment tests' PromQL helpers in tests/deploy/support.py); a
helper of one test module stays in that module. No test module imports another, or a conftest."""
