"""What psycopg2 sends, as a test sees it: a connection class that notes each message that
waits for the server's answer (its own BEGIN, a pre-ping's `SELECT 1`, a COMMIT or ROLLBACK
only when a transaction is open), for `connect_args={"connection_factory": ...}`."""

from __future__ import annotations

import psycopg2.extensions as ext


class _Cursor(ext.cursor):
    def execute(self, query, vars=None):
        connection = self.connection
        if not connection.autocommit and connection.status == ext.STATUS_READY:
            connection.sent.append("BEGIN")  # psycopg2 opens the transaction itself
        text = query.decode() if isinstance(query, bytes) else str(query)
        connection.sent.append(text.split(None, 1)[0].upper())
        return super().execute(query, vars)


class _Connection(ext.connection):
    """psycopg2's connection, noting each message that waits for the server's answer."""

    sent: list[str]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cursor_factory = _Cursor

    def commit(self):
        if self.status == ext.STATUS_BEGIN:
            self.sent.append("COMMIT")
        super().commit()

    def rollback(self):
        if self.status == ext.STATUS_BEGIN:
            self.sent.append("ROLLBACK")
        super().rollback()


def counting_connection() -> tuple[type, list[str]]:
    """A connection class of its own and the list it writes to (first word of each message)."""
    sent: list[str] = []
    return type("Counting", (_Connection,), {"sent": sent}), sent
