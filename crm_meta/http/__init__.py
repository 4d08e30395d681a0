"""The HTTP layer every front end shares: errors and the one table mapping domain errors to HTTP,
the JSON envelope, "HTML or JSON" negotiation, and the web side's Flask extensions."""
