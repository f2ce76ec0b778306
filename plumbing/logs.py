"""Logging set-up: one line per record, JSON when asked (``LAPSE_LOG_FORMAT=json``).

Correlation: a record's ``extra`` may carry ``event_id``, ``episode_id``, ``delivery_id`` and
``alert_id``; the JSON formatter copies them into the line so one alert can be followed from
the detector to each webhook attempt. Member ids go in messages at debug level only; other
``extra`` keys are never written.

Secrets are kept out of log calls by the code that holds them; :class:`RedactSecrets` is the
last line of defence should one slip into a message, an argument or a traceback anyway.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any, TextIO

CORRELATION_KEYS = ("event_id", "episode_id", "delivery_id", "alert_id")
REDACTED = "[redacted]"

# What our secrets look like (see records/api_keys.py and api/signing.py), plus the usual suspects.
# None of them matches a quote or a backslash, so redacting a JSON line keeps it valid JSON.
_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Standard Webhooks secrets: whsec_ + base64.
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), REDACTED),
    # API keys: lapse_ + 43 URL-safe base64 characters. The look-ahead (a digit or a capital)
    # spares long lowercase names such as metric names (lapse_detector_events_total).
    (re.compile(r"lapse_(?=[A-Za-z0-9_-]*[A-Z0-9])[A-Za-z0-9_-]{24,}"), REDACTED),
    # Standard Webhooks signatures: v1,<base64 HMAC-SHA256>.
    (re.compile(r"\bv1,[A-Za-z0-9+/]{16,}={0,2}"), REDACTED),
    # Authorization header values.
    (re.compile(r"\b(Bearer)\s+[^\s\"'\\,;]+", re.IGNORECASE), rf"\1 {REDACTED}"),
    (re.compile(r"\b(Basic)\s+[A-Za-z0-9+/]{8,}={0,2}", re.IGNORECASE), rf"\1 {REDACTED}"),
    # Credentials in a URL's user information (https://user:password@host).
    (re.compile(r"(://)[^/\s:@\"'\\]+:[^/\s@\"'\\]+@"), rf"\1{REDACTED}@"),
)


def redact(text: str) -> str:
    """``text`` with every value that looks like a secret replaced by ``[redacted]``."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message, correlation ids, traceback and stack without secrets.

    The message is formatted here (``msg % args``) so a secret passed as an argument is caught
    too; the traceback is formatted here so both formatters print the redacted one.
    """

    _tracebacks = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        for key in CORRELATION_KEYS:
            value = getattr(record, key, None)
            if isinstance(value, str):
                setattr(record, key, redact(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self._tracebacks.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in CORRELATION_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                doc[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        return json.dumps(doc, default=str)


def handler(json_format: bool = False) -> logging.StreamHandler[TextIO]:
    """A stderr handler with the chosen format and the redaction filter."""
    out = logging.StreamHandler()
    out.setFormatter(
        JsonFormatter()
        if json_format
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    out.addFilter(RedactSecrets())
    return out


def configure(level: str = "INFO", json_format: bool = False) -> None:
    root = logging.getLogger()
    root.handlers[:] = [handler(json_format)]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
