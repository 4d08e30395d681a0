"""Count database round trips on the wire: a small TCP proxy in front of PostgreSQL that reads
the frontend protocol the client sends and counts each message that waits for an answer.

Driver-independent: psycopg2's separate BEGIN, the pool's pre-ping `SELECT 1`, the ROLLBACK
when a session ends, and psycopg 3's extended-protocol queries (one Sync each) all count,
whatever the ORM's events see. Point the app's database URL at `proxy.url(database_url)`.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter, deque

SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102


def _first_word(sql: str) -> str:
    words = sql.strip().lstrip("(").split(None, 1)
    return words[0].upper().rstrip(";") if words else "?"


class WireCounter:
    """A threaded proxy on 127.0.0.1; `trips` counts round trips by the statement's first word."""

    def __init__(self, upstream_host: str = "127.0.0.1", upstream_port: int = 5432):
        self.upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self.trips: Counter = Counter()
        self.recent: deque[str] = deque(maxlen=500)  # first 80 characters of each, in order
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="pgwire-accept", daemon=True).start()

    @classmethod
    def for_url(cls, database_url: str) -> WireCounter:
        from sqlalchemy.engine import make_url

        url = make_url(database_url)
        return cls(url.host or "127.0.0.1", url.port or 5432)

    def url(self, database_url: str) -> str:
        """The same database reached through this proxy, without TLS (so it can be read)."""
        from sqlalchemy.engine import make_url

        url = make_url(database_url)
        query = dict(url.query) | {"sslmode": "disable"}
        return url.set(host="127.0.0.1", port=self.port, query=query).render_as_string(
            hide_password=False)

    def reset(self) -> None:
        with self._lock:
            self.trips.clear()
            self.recent.clear()

    def snapshot(self) -> tuple[Counter, list[str]]:
        with self._lock:
            return Counter(self.trips), list(self.recent)

    def _count(self, kind: str, text: str) -> None:
        with self._lock:
            self.trips[kind] += 1
            self.recent.append(" ".join(text.split())[:80])

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._client_to_server, args=(client, server), daemon=True).start()
            threading.Thread(target=self._copy, args=(server, client), daemon=True).start()

    @staticmethod
    def _copy(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            _shut(src, dst)

    def _client_to_server(self, src: socket.socket, dst: socket.socket) -> None:
        buffer, started, parsed, named = b"", False, "", {}
        try:
            while chunk := src.recv(65536):
                buffer += chunk  # counted before it is sent: the count never lags the answer
                while True:
                    if not started:  # untyped startup packets: length, then a code
                        if len(buffer) < 8:
                            break
                        length = int.from_bytes(buffer[:4], "big")
                        if len(buffer) < length:
                            break
                        code = int.from_bytes(buffer[4:8], "big")
                        buffer = buffer[length:]
                        started = code not in (SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST)
                        continue
                    if len(buffer) < 5:
                        break
                    length = int.from_bytes(buffer[1:5], "big")
                    if len(buffer) < 1 + length:
                        break
                    kind, body, buffer = buffer[:1], buffer[5:1 + length], buffer[1 + length:]
                    if kind == b"Q":  # simple query: one round trip
                        sql = body.rstrip(b"\0").decode(errors="replace")
                        self._count(_first_word(sql), sql)
                    elif kind == b"P":  # extended protocol: Parse(name, query, ...) ... Sync
                        name, query = body.split(b"\0", 2)[:2]
                        parsed = named[name] = query.decode(errors="replace")
                    elif kind == b"B":  # Bind(portal, statement, ...): a prepared one, reused
                        parsed = named.get(body.split(b"\0", 2)[1], parsed)
                    elif kind == b"S":
                        self._count(_first_word(parsed) if parsed else "SYNC", parsed or "SYNC")
                        parsed = ""
                    elif kind == b"F":
                        self._count("FUNCTION_CALL", "function call")
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            _shut(src, dst)


def _shut(*socks: socket.socket) -> None:
    """End both directions of a relayed pair, whichever side closed first."""
    for sock in socks:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
