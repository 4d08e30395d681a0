"""Keep secrets out of every log line, whoever writes it (urllib3, requests, werkzeug, gunicorn,
our own code).

`install()` (idempotent) puts a log-record factory in place that redacts each record as it is
made - the formatted message with its args, exception and stack text - and a filter on every
handler present, which also covers `extra=` fields (set after the factory runs). A queue's
front handler (crm_meta.ops.logqueue) whose writers carry the filter gets none: the extras are
redacted on the writer's thread, before anything is formatted (`guarded`). `redact(text)`
and `RedactingFilter` are the standalone pieces a formatter or handler (JSON or text) can use.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import unquote

MASK = "[REDACTED]"
# Parameters whose values are secrets wherever they appear (query strings, form bodies, JSON,
# reprs, cookies, header dumps): Meta tokens, the app secret, proofs, Meta's signed requests,
# passwords, the CRM's JWT (`token`, its `access_token` cookie), its admin token, our cookies.
SECRET_PARAMS = ("input_token", "access_token", "client_secret", "fb_exchange_token",
                 "appsecret_proof", "signed_request", "code_verifier", "refresh_token",
                 "token", "id_token", "password", "passwd", "api_key", "x-admin-token",
                 "x-sandbox-control-token", "x-metrics-token", "session", "remember_token",
                 "crm_meta_oauth", "__host-crm_meta_oauth", "smtp_password")
_SECRET_NAMES = frozenset(SECRET_PARAMS)
# A parameter: its name (letters, or any percent-encoded byte: `%63ode`, `access%5Ftoken`),
# `=` or `%3D`, then its value up to the next separator.
_VALUE = r"[^&\s\"'<>#,;)\]}]+"
_PARAM = re.compile(rf"((?:%[0-9A-Fa-f]{{2}}|[A-Za-z0-9_.-])+)(=|%3[Dd])({_VALUE})")
_QUOTED = re.compile(r"""(?i)(["'])([A-Za-z0-9_.%-]{1,60})\1(\s*:\s*)(["'])([^"']*)\4""")
# Header lines in a dump: every value of these headers is a credential.
_HEADER = re.compile(r"(?im)\b(x-admin-token|x-sandbox-control-token|cookie|set-cookie)"
                     r"(\s*:\s*)([^\r\n\"']+)")
_BEARER = re.compile(r"(?i)\b(bearer|oauth|basic)(\s+)([A-Za-z0-9._~+/=|-]{8,})")
_META_TOKEN = re.compile(r"\bEAA[A-Za-z0-9]{20,}")  # Meta's user, page and system-user tokens
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")  # any bare JWT
# Our service keys (`cms_`) and the gateway's keys (`cmg_`): the whole random part, wherever
# the key sits (glued to other text too); a tail under 20 characters is no usable key.
_KEY = re.compile(r"(cm[sg]_)[A-Za-z0-9_-]{20,}")
_QUERY_START = ("?", "&", ";", "/")
_MARK = "_crm_meta_redacting"
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

# What each pattern above needs somewhere in a text before it can match: a text holding none of
# these (most log lines: a request's line, its route and id) has nothing to redact, and a few
# substring tests tell, instead of seven regex passes. Kept in step with the patterns; a
# property test (tests/core/test_log_redaction.py) checks redact() against the full passes.
_HINTS_ANY_CASE = ("=", "%3d",  # _PARAM
                   "cookie", "x-admin-token", "x-sandbox-control-token",  # _HEADER
                   "bearer", "oauth", "basic")  # _BEARER
# _META_TOKEN, _JWT, _KEY; and the three letters that `(?i)` matches to an `i` or an `s` of the
# words above while str.lower() does not (U+0130, U+0131, U+017F): a text with one gets the passes.
_HINTS_CASED = ("EAA", "eyJ", "cms_", "cmg_", "\u0130", "\u0131", "\u017f")
_QUOTE_COLON = re.compile(r"[\"']\s*:")  # _QUOTED: a closing quote, then the colon

_secrets: set[str] = set()
_ordered: tuple[str, ...] = ()  # the literal secrets, longest first
_lock = threading.Lock()


def register(*values: str | None) -> None:
    """Literal secrets (the app secret, signing keys) redacted wherever they appear."""
    global _ordered
    with _lock:
        _secrets.update(v for v in values if isinstance(v, str) and len(v) >= 8)
        _ordered = tuple(sorted(_secrets, key=len, reverse=True))


def _may_hold_secret(text: str) -> bool:
    """False only when no pattern and no literal secret can match anywhere in `text`."""
    lowered = text.lower()
    for hint in _HINTS_ANY_CASE:  # plain loops: this runs for every string of every log record
        if hint in lowered:
            return True
    for hint in _HINTS_CASED:
        if hint in text:
            return True
    if ":" in text and _QUOTE_COLON.search(text):
        return True
    return any(secret in text for secret in _ordered)


def _decoded(name: str) -> str:
    """A parameter name as a server would read it (percent-decoded, even twice)."""
    for _ in range(3):
        decoded = unquote(name)
        if decoded == name:
            break
        name = decoded
    return name.lower()


def secret_name(name: str) -> bool:
    """Whether a parameter, field or header of this name holds a secret."""
    return _decoded(name) in _SECRET_NAMES


def _masked(value: str) -> bool:
    return value.startswith(MASK[:-1])  # already redacted: redacting again changes nothing


def _param(match: re.Match) -> str:
    raw, sep, value = match.groups()
    if _masked(value):
        return match.group(0)
    decoded = _decoded(raw)
    # What follows the last separator a decoded name holds (`%26code` is `&code`).
    name = re.split(r"[?&;/]", decoded)[-1]
    before = match.string[match.start() - 1] if match.start() else "?"
    # `code` is also an ordinary word ("code=190" in our own lines): a query parameter's only,
    # or a name someone took the trouble to percent-encode.
    is_code = name == "code" and (before in _QUERY_START or decoded != raw.lower()
                                  or match.string[max(0, match.start() - 5):match.start()] == "&amp;")
    if name in _SECRET_NAMES or is_code:
        return f"{raw}{sep}{MASK}"
    return match.group(0)


def _quoted(match: re.Match) -> str:
    quote, name, colon, open_, value = match.groups()
    if not value or _masked(value) or not (secret_name(name) or _decoded(name) == "code"):
        return match.group(0)
    return f"{quote}{name}{quote}{colon}{open_}{MASK}{open_}"


def _header(match: re.Match) -> str:
    name, colon, value = match.groups()
    return match.group(0) if _masked(value.strip()) else f"{name}{colon}{MASK}"


def redact(text: str) -> str:
    """The text with every secret value replaced by [REDACTED]; redacting twice changes nothing."""
    if not text or not _may_hold_secret(text):
        return text
    return _redact_all(text)


def _redact_all(text: str) -> str:
    text = _HEADER.sub(_header, text)
    text = _PARAM.sub(_param, text)
    text = _QUOTED.sub(_quoted, text)
    text = _BEARER.sub(rf"\1\2{MASK}", text)
    text = _META_TOKEN.sub(MASK, text)
    text = _JWT.sub(MASK, text)
    text = _KEY.sub(rf"\1{MASK}", text)
    for secret in _ordered:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _clean(value, depth: int = 0):
    if isinstance(value, str):
        return redact(value)
    if depth < 3 and isinstance(value, dict):
        return {k: MASK if isinstance(k, str) and secret_name(k) and v else _clean(v, depth + 1)
                for k, v in value.items()}
    if depth < 3 and isinstance(value, list | tuple):
        return type(value)(_clean(v, depth + 1) for v in value)
    return value


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact one record in place (message with its args, extras, exception and stack text)."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: logging reports it; leave the record alone
        return record
    extras = [(key, value) for key, value in vars(record).items()
              if key not in _STANDARD and isinstance(value, str | dict | list | tuple)]
    texts = [message, *(value for _, value in extras if isinstance(value, str))]
    # One hint scan over the message and the plain-text extras together (no hint holds the
    # NUL joining them, so none can match across two): most records, a request's line among
    # them, have nothing to redact. Dicts and lists are always walked (their keys may name a
    # secret).
    anything = _may_hold_secret("\x00".join(texts))
    clean = redact(message) if anything else message
    if clean != message:
        record.msg, record.args = clean, ()
    for key, value in extras:
        if anything or not isinstance(value, str):
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


def guarded(handler: logging.Handler) -> bool:
    """Whether `handler` redacts every record before it is written: by its own filter, or, for
    a queue's front (crm_meta.ops.logqueue, `targets`), because every handler it hands records
    to does (on the writer's thread, off the request's path)."""
    if any(isinstance(f, RedactingFilter) for f in handler.filters):
        return True
    targets = getattr(handler, "targets", ())
    return bool(targets) and all(guarded(target) for target in targets)


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
                if not guarded(handler):
                    handler.addFilter(RedactingFilter())
