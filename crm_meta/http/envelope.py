"""The contract's JSON envelope, built in one place."""

from datetime import UTC, datetime

from flask import jsonify


def _timestamp() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def ok(data, status: int = 200):
    """`{"success": true, "data": ..., "timestamp": ...}`."""
    return jsonify(success=True, data=data, timestamp=_timestamp()), status


def error_payload(code: str, message: str) -> dict:
    """`{"success": false, "detail", "error": {code, message}, "timestamp"}`."""
    return {
        "success": False,
        "detail": message,
        "error": {"code": code, "message": message},
        "timestamp": _timestamp(),
    }
