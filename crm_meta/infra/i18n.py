"""`N_`: marks a user-facing text where it is declared (an error class, a rule, a raise) so that
`pybabel extract -k N_` puts it in the catalogue; the page that shows it translates it then."""

from __future__ import annotations


def N_(text: str) -> str:
    """Mark a string for extraction without translating it here."""
    return text
