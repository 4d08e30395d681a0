"""The Meta domain: Graph client, OAuth state, tokens, connections, keep-alive. No HTTP here:
no request, session or g, no views, no status codes (crm_meta.http.errors maps its errors)."""
