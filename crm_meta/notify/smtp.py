"""Sending one e-mail through the configured SMTP server, never with credentials in clear text."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

SMTPS_PORT = 465  # implicit TLS (RFC 8314); any other port upgrades the session with STARTTLS
TIMEOUT = 10.0  # seconds per SMTP operation


class SMTPWithoutTLS(smtplib.SMTPException):
    """The server offers no STARTTLS: nothing is sent (unless plain text was allowed, and then
    never a login)."""


@dataclass(frozen=True)
class Server:
    """The configured SMTP server (SMTP_HOST, SMTP_PORT, SMTP_USER, SMTP_PASSWORD,
    SMTP_ALLOW_PLAINTEXT); no login when `user` is empty."""

    host: str
    port: int
    user: str
    password: str
    allow_plaintext: bool


def send(message: EmailMessage, via: Server, factory=None) -> None:
    """Deliver `message` over TLS with a verified certificate and host name (SMTPS on port
    465, else STARTTLS). A server without STARTTLS gets nothing, unless `allow_plaintext`
    (SMTP_ALLOW_PLAINTEXT=1) lets a message without a login go in clear."""
    host, port, user, password = via.host, via.port, via.user, via.password
    allow_plaintext = via.allow_plaintext
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
            elif not allow_plaintext:
                raise SMTPWithoutTLS(f"{host}:{port} offers no STARTTLS; refusing to send in clear "
                                     "(SMTP_ALLOW_PLAINTEXT=1 allows it)")
        if user:
            server.login(user, password)
        server.send_message(message)
