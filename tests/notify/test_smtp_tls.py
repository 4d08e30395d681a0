"""E-mail notices against a real local SMTP server (aiosmtpd): TLS first, credentials never in clear."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import threading
from dataclasses import dataclass, field

import pytest
from aiosmtpd.smtp import SMTP, AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from crm_meta import jobs
from crm_meta.notify import Notifier
from crm_meta.runtime import of
from tests.helpers.users import add_tenant
from tests.tools.configs import config_values

PASSWORD = "smtp-pass-Do-Not-Leak-42"


# -- certificates: a private CA and a server certificate for 127.0.0.1 -----------------------------
def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@dataclass
class Certificates:
    ca_file: str
    cert_file: str
    key_file: str


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Certificates:
    folder = tmp_path_factory.mktemp("smtp-certs")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("test CA")).issuer_name(_name("test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = Certificates(str(folder / "ca.pem"), str(folder / "server.pem"), str(folder / "server.key"))
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return files


# -- the server ---------------------------------------------------------------------------------------
@dataclass
class MailServer:
    """What a local SMTP server saw: logins (user, password) and delivered messages."""

    port: int = 0
    logins: list = field(default_factory=list)
    messages: list = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls this hook by name
        self.messages.append((session.ssl is not None, envelope.content))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login.decode(), auth_data.password.decode(),
                            session.ssl is not None))
        return AuthResult(success=True)


@pytest.fixture
def smtp_server(certificates):
    """Start a server on a free port: `starttls=False` offers AUTH but no STARTTLS (the bad case)."""
    started = []

    def start(*, starttls: bool) -> MailServer:
        import ssl

        tls = None
        if starttls:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(certificates.cert_file, certificates.key_file)
        state = MailServer()
        loop = asyncio.new_event_loop()

        def factory():
            return SMTP(state, hostname="mail.test", tls_context=tls, auth_require_tls=False,
                        authenticator=state.authenticate, loop=loop)

        thread = threading.Thread(target=loop.run_forever, name="smtp-test", daemon=True)
        thread.start()  # the loop runs in its own thread (a browser test may run one here)
        server = asyncio.run_coroutine_threadsafe(
            loop.create_server(factory, "127.0.0.1", 0), loop).result(10)
        state.port = server.sockets[0].getsockname()[1]
        started.append((loop, server, thread))
        return state

    yield start
    for loop, server, thread in started:
        async def stop(server=server):
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def mailer(port: int, **extra) -> Notifier:
    return Notifier(config_values(**{"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "SMTP_USER": "mailer",
                                     "SMTP_PASSWORD": PASSWORD, "SMTP_FROM": "crm@example.com", **extra}))


@pytest.fixture
def trust(monkeypatch, certificates):
    """Make the test CA the one the client trusts (as an operator's CA bundle would)."""
    monkeypatch.setenv("SSL_CERT_FILE", certificates.ca_file)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.fixture
def distrust(monkeypatch):
    """The system's trust store only: the test CA is unknown."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


# -- the cases -------------------------------------------------------------------------------------------
def test_without_starttls_the_password_never_leaves_and_nothing_is_sent(smtp_server, caplog, notice):
    server = smtp_server(starttls=False)
    with caplog.at_level(logging.WARNING, logger="crm_meta"):
        result = mailer(server.port).deliver(notice())
    assert result == {"email": "failed:no_starttls"}
    assert server.logins == [] and server.messages == []
    assert "STARTTLS" in caplog.text and PASSWORD not in caplog.text


def test_an_unverifiable_certificate_is_refused_before_the_login(smtp_server, distrust, notice):
    server = smtp_server(starttls=True)
    result = mailer(server.port).deliver(notice())
    assert result["email"].startswith("failed:")
    assert server.logins == [] and server.messages == []


def test_a_verified_starttls_session_logs_in_and_delivers(smtp_server, trust, notice):
    server = smtp_server(starttls=True)
    assert mailer(server.port).deliver(notice()) == {"email": "delivered"}
    assert server.logins == [("mailer", PASSWORD, True)]
    [(over_tls, content)] = server.messages
    assert over_tls and b"Subject: Your Meta connection ends in 7 days" in content


def test_without_a_login_a_server_without_starttls_gets_nothing_in_clear(smtp_server, notice):
    """Review 2: SMTP without SMTP_USER sent in clear when the server offered no STARTTLS."""
    server = smtp_server(starttls=False)
    result = mailer(server.port, SMTP_USER="", SMTP_PASSWORD="").deliver(notice())
    assert result == {"email": "failed:no_starttls"}
    assert server.logins == [] and server.messages == []


def test_smtp_allow_plaintext_lets_a_message_without_login_go_in_clear(smtp_server, notice):
    server = smtp_server(starttls=False)
    sender = mailer(server.port, SMTP_USER="", SMTP_PASSWORD="", SMTP_ALLOW_PLAINTEXT=True)
    assert sender.deliver(notice()) == {"email": "delivered"}
    assert server.logins == [] and len(server.messages) == 1
    with_login = mailer(server.port, SMTP_ALLOW_PLAINTEXT=True)  # never a password in clear
    assert with_login.deliver(notice()) == {"email": "failed:no_starttls"}
    assert server.logins == []


def test_the_outbox_retries_until_the_server_offers_tls(make_app, sandbox, smtp_server, trust, caplog, outbox,
                                                        queue_notices):
    plain = smtp_server(starttls=False)
    app = make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=plain.port, SMTP_USER="mailer",
                   SMTP_PASSWORD=PASSWORD, NOTIFY_RETRY_BASE_SECONDS=60)
    [notice_id] = queue_notices(app, add_tenant(app, "acme").tenant_id)

    with caplog.at_level(logging.INFO):
        jobs.outbox_tick(app)
    [row] = outbox(app)
    assert row.delivered_at is None and row.attempts == 1 and row.next_attempt_at is not None
    assert row.last_outcome == "email=failed:no_starttls"
    assert plain.logins == [] and plain.messages == []
    assert PASSWORD not in caplog.text

    fixed = smtp_server(starttls=True)  # the operator turns STARTTLS on
    of(app).notifier.smtp["PORT"] = fixed.port
    sandbox.advance(60)
    jobs.outbox_tick(app)
    [row] = outbox(app)
    assert row.delivered_at is not None and row.attempts == 2
    assert fixed.logins == [("mailer", PASSWORD, True)]
    [(_, content)] = fixed.messages
    assert f"<{notice_id}@crm-meta>".encode() in content


def test_smtps_on_port_465_wraps_the_connection_with_a_verifying_context(fake_smtp, notice):
    import ssl

    sender = Notifier(config_values(SMTP_HOST="smtp.example", SMTP_PORT=465, SMTP_USER="mailer",
                                    SMTP_PASSWORD=PASSWORD), smtp_factory=fake_smtp)
    assert sender.deliver(notice()) == {"email": "delivered"}
    [(server, _)] = fake_smtp.sent
    assert server.port == 465 and not getattr(server, "tls", False)  # no STARTTLS inside SMTPS
    assert server.context.verify_mode == ssl.CERT_REQUIRED and server.context.check_hostname
