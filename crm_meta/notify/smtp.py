"""Sending one e-mail through the configured SMTP server, never with credentials in clear text."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

SMTPS_PORT = 465  # implicit TLS (RFC 8314); any other port upgrades the session with STARTTLS
TIMEOUT = 10.0  # seconds per SMTP operation


class SMTPWithoutTLS(smtplib.SMTPException):
    """The server offers no STARTTLS while a login is configured: nothing is sent."""


def send(message: EmailMessage, *, host: str, port: int, user: str = "", password: str = "",
         factory=None) -> None:
    """Deliver `message`; TLS with a verified certificate and host name whenever the server
    offers it, and always before a login (SMTPS on port 465, else STARTTLS)."""
    context = ssl.create_default_context()
    if port == SMTPS_PORT:
        server = (factory or smtplib.SMTP_SSL)(host, port, timeout=TIMEOUT, context=context)
    else:
        server = (factory or smtplib.SMTP)(host, port, timeout=TIMEOUT)
    with server:
        if port != SMTPS_PORT:
            server.ehlo()
            if server.has_extn("starttls"):
                server.starttls(context=context)
                server.ehlo()
            elif user:
                raise SMTPWithoutTLS(f"{host}:{port} offers no STARTTLS; refusing to log in without TLS")
        if user:
            server.login(user, password)
        server.send_message(message)
