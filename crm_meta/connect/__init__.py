"""Connecting a tenant to Meta, as both front ends (the JSON API and the pages) drive it: the
request side of the OAuth flow and what is said about a connection."""
