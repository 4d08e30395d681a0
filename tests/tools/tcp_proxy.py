"""A TCP forwarder between the app and a real server, which a test can cut and restore.

Cutting closes the listening socket and every open connection, which is what a client sees
while PostgreSQL restarts (connections dropped, new ones refused); restoring listens again on
the same port, so the client's URL stays valid.
"""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._stop = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()
        self._thread: threading.Thread | None = None
        self.port = 0
        self.restore()

    def freeze(self) -> None:
        """Hold every byte in both directions, connections open: a black-holed network (no
        reset, no answer), which only a client-side timeout notices."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def restore(self) -> None:
        """Listen (again, on the same port) and forward new connections."""
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, args=(listener, self._stop),
                                        daemon=True, name="tcp-proxy")
        self._thread.start()

    def cut(self) -> None:
        """Refuse new connections and drop every open one, as a server restart does."""
        self._stop.set()
        self._flowing.set()
        if self._thread is not None:
            self._thread.join(10)  # it closes the listening socket on its way out
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            _close(conn)

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        with listener:
            self._serve(listener, stop)

    def _serve(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                if stop.is_set():
                    _close(client)
                    _close(upstream)
                    return
                self._connections |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True,
                                 name="tcp-proxy-pump").start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._connections.discard(source)
                self._connections.discard(sink)
            _close(source)
            _close(sink)


def _close(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()
