"""Serving the portal with uvicorn: renkei's own TLS server (set-up A) or plain HTTP behind a proxy (set-up B).

With TLS, the server asks every client for a certificate and accepts only one signed by the hub's terminal
CA (``ssl.CERT_OPTIONAL``: a connection without a certificate is let through, so that the browser shows the
portal's own "terminal not registered" page and the refusal is audited; a certificate from anywhere else
fails the handshake). TLS 1.2 is the minimum (ASVS v5.0.0-12.1.1). The certificate reaches the app through
:class:`renkei.web.terminal.ClientCertProtocol`.

uvicorn's own proxy-header handling is switched off: the app alone decides, by its trusted-proxy setting,
whose X-Forwarded-For to believe, and it must see the real TCP peer to decide.

Set-up B preferably listens on a Unix socket (:func:`bind_unix_socket`), which renkei creates itself:
uvicorn's own ``uds`` option makes the socket 0666, so that every local user could connect and pose as the
proxy. Ours is 0660 from the moment it exists; the directory it is in decides its group (make it the proxy's,
setgid), so only the service account and the proxy can connect.

uvicorn's access log (one line per request: client, request line, status) is kept, but written by a thread of
its own (:func:`access_log_off_the_loop`): the event loop, which serves every connection's TLS and HTTP, only
queues each record, and the formatting and the write to stdout (a pipe to the journal, which can block) happen
elsewhere. It is the operators' request log; the hub's own record of who accessed what is the audit log.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import socket
import ssl
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from logging.handlers import QueueHandler, QueueListener
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from renkei.errors import Location, RenkeiError
from renkei.web.terminal import ClientCertProtocol

SOCKET_MODE = 0o660  # the service account and the proxy's group; nobody else may connect
ACCESS_LOGGER = "uvicorn.access"


@dataclass(frozen=True)
class TLSFiles:
    certificate: Path  # the server's certificate (chain), PEM
    key: Path  # its private key, PEM
    client_ca: Path  # the hub's terminal CA certificate: which client certificates the handshake accepts


def tls_context(files: TLSFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.certificate, files.key)
    context.load_verify_locations(cafile=files.client_ca)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.set_alpn_protocols(["http/1.1"])
    return context


def _context_factory(
    files: TLSFiles,
) -> Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]:
    def factory(_config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return tls_context(files)

    return factory


def server_config(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    tls: TLSFiles | None,
    log_level: str = "info",
    configure_logging: bool = True,
) -> uvicorn.Config:
    """uvicorn's configuration for the portal (``configure_logging=False`` leaves the process's logging alone)."""
    extra: dict[str, Any] = {} if configure_logging else {"log_config": None}
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=ClientCertProtocol,
        ws="none",
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        ssl_context_factory=_context_factory(tls) if tls is not None else None,
        log_level=log_level,
        **extra,
    )


class _RecordQueueHandler(QueueHandler):
    """Queues the record as it is: the listener's handlers format it (uvicorn's access formatter needs the
    record's arguments, which :meth:`QueueHandler.prepare` would have merged into the message on the loop)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


@contextmanager
def access_log_off_the_loop(logger_name: str = ACCESS_LOGGER) -> Iterator[None]:
    """For the block, the access log's handlers run in a thread of their own; the event loop only queues each
    record. What is queued is written before the block ends. Nothing changes for a logger without handlers."""
    logger = logging.getLogger(logger_name)
    handlers = list(logger.handlers)
    if not handlers:
        yield
        return
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = QueueListener(records, *handlers, respect_handler_level=True)
    logger.handlers = [_RecordQueueHandler(records)]
    listener.start()
    try:
        yield
    finally:
        listener.stop()  # writes the records still queued, then ends the thread
        logger.handlers = handlers


def bind_unix_socket(path: Path) -> socket.socket:
    """A Unix socket bound at ``path``, created 0660 (the server listens on it); a stale one is replaced."""
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o117)  # bind creates the file: 0660 from the first moment, never wider
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise RenkeiError(
            f"Unix ソケットを作成できません: {exc.strerror}",
            f"cannot create the Unix socket: {exc.strerror}",
            Location(path),
        ) from None
    finally:
        os.umask(previous)
    path.chmod(SOCKET_MODE)
    return sock


def run_on_unix_socket(config: uvicorn.Config, path: Path) -> None:
    """Serve ``config``'s app on a Unix socket at ``path`` until stopped, then remove the socket."""
    sock = bind_unix_socket(path)
    try:
        with access_log_off_the_loop():
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        path.unlink(missing_ok=True)


def _remove_stale_socket(path: Path) -> None:
    """A socket left by a server that is gone is removed; a live one, or any other file, is left alone."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise RenkeiError(
            "ソケットの場所に別のファイルがあります", "another file is in the socket's place", Location(path)
        )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError as exc:
            if exc.errno != errno.ECONNREFUSED:
                raise RenkeiError(
                    f"ソケットを確認できません: {exc.strerror}",
                    f"cannot check the socket: {exc.strerror}",
                    Location(path),
                ) from None
            path.unlink()  # nobody listens: left by a server that was killed
            return
    raise RenkeiError(
        "このソケットでは別のサーバが待ち受けています",
        "another server is listening on this socket",
        Location(path),
    )
