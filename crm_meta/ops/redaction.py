"""Keep secrets out of every log line, whoever writes it (urllib3, requests, werkzeug, gunicorn,
our own code).

`install()` (idempotent) puts a log-record factory in place that redacts each record as it is
made - the formatted message with its args, exception and stack text - and a filter on every
handler present, which also covers `extra=` fields (set after the factory runs). `redact(text)`
and `RedactingFilter` are the standalone pieces a formatter or handler (JSON or text) can use.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "[REDACTED]"
# Parameters whose values are secrets wherever they appear (query strings, form bodies, JSON,
# reprs): Meta tokens, the app secret, codes, proofs, Meta's signed requests.
SECRET_PARAMS = ("input_token", "access_token", "client_secret", "fb_exchange_token",
                 "appsecret_proof", "signed_request", "code_verifier", "refresh_token")
_NAMES = "|".join(SECRET_PARAMS)
_VALUE = r"[^&\s\"'<>#,;)\]}]+"
_PARAM = re.compile(rf"(?i)(?<![A-Za-z0-9_])({_NAMES})(=|%3D)({_VALUE})")
_QUOTED = re.compile(rf"(?i)([\"'](?:{_NAMES}|code)[\"']\s*:\s*[\"'])([^\"']+)")
# `code` is also an ordinary word ("code=190" in our own lines): only a query parameter's value.
_CODE = re.compile(r"(?i)((?:^|[?&]|&amp;|%26|%3F)code(?:=|%3D))([^&\s\"'<>#]+)")
_BEARER = re.compile(r"(?i)\b(bearer|oauth)(\s+)([A-Za-z0-9._~+/=|-]{8,})")
_META_TOKEN = re.compile(r"\bEAA[A-Za-z0-9]{20,}")  # Meta's user, page and system-user tokens
_MARK = "_crm_meta_redacting"
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

_secrets: set[str] = set()
_lock = threading.Lock()


def register(*values: str | None) -> None:
    """Literal secrets (the app secret, signing keys) redacted wherever they appear."""
    with _lock:
        _secrets.update(v for v in values if isinstance(v, str) and len(v) >= 8)


def redact(text: str) -> str:
    """The text with every secret value replaced by [REDACTED]."""
    if not text:
        return text
    text = _PARAM.sub(rf"\1\2{MASK}", text)
    text = _QUOTED.sub(rf"\1{MASK}", text)
    text = _CODE.sub(rf"\1{MASK}", text)
    text = _BEARER.sub(rf"\1\2{MASK}", text)
    text = _META_TOKEN.sub(MASK, text)
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _clean(value, depth: int = 0):
    if isinstance(value, str):
        return redact(value)
    if depth < 3 and isinstance(value, dict):
        return {k: _clean(v, depth + 1) for k, v in value.items()}
    if depth < 3 and isinstance(value, list | tuple):
        return type(value)(_clean(v, depth + 1) for v in value)
    return value


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact one record in place (message with its args, extras, exception and stack text)."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: logging reports it; leave the record alone
        return record
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, ()
    for key, value in list(vars(record).items()):
        if key not in _STANDARD and isinstance(value, str | dict | list | tuple):
            record.__dict__[key] = _clean(value)
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        clean = redact(text)
        if clean != text:  # formatters use exc_text when exc_info is gone
            record.exc_text, record.exc_info = clean, None
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """The same redaction as a handler filter, for handlers fed by records made elsewhere."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install(*secrets: str | None) -> None:
    """Redact every record this process makes from now on; idempotent (safe to call per app,
    and again after handlers were added, e.g. by gunicorn)."""
    register(*secrets)
    with _lock:
        factory = logging.getLogRecordFactory()
        if not getattr(factory, _MARK, False):

            def redacting_factory(*args, **kwargs):
                return redact_record(factory(*args, **kwargs))

            setattr(redacting_factory, _MARK, True)
            logging.setLogRecordFactory(redacting_factory)
        loggers = [logging.getLogger(), *(logger for logger in logging.root.manager.loggerDict.values()
                                          if isinstance(logger, logging.Logger))]
        for logger in loggers:
            for handler in list(logger.handlers):
                if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                    handler.addFilter(RedactingFilter())
