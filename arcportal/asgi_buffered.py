"""The portal as an ASGI application that reads every request whole before a Python thread sees it.

granian's WSGI interface hands a request to a Python thread once its headers are in and streams the body into that
thread, so a client that sends half a body holds the thread: 20 of them stalled ``/healthz`` on ``make run``'s
2 × 4 threads for as long as they liked (docs/decisions.md, "Serving tier"). Here the body is read in the worker's
event loop, where a waiting client costs one coroutine, under the limits nginx applies in production
(``deploy/nginx/arcportal.conf``): at most ``ARC_WEB_MAX_BODY_BYTES`` (413, refused from ``Content-Length`` before
anything is read), and ``ARC_WEB_BODY_TIMEOUT_SECONDS`` between two reads and 6 × that in all (408). Only a complete
request reaches the thread pool (``ARC_WEB_THREADS`` per worker process), which runs Django's WSGI handler unchanged.

A response is built whole in its thread and sent from the event loop, so a slow reader holds no thread either; one
over 1 MiB (a streaming export) is sent from the thread as it is produced (its iterator may hold a database cursor
of that thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from django.core.wsgi import get_wsgi_application

STREAM_AFTER_BYTES = 1024 * 1024


class BodyRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class BufferedWSGI:
    """An ASGI application around a WSGI one (``application`` below wraps Django's)."""

    def __init__(self, wsgi_app, *, threads: int, max_body: int, body_timeout: float) -> None:
        self.app = wsgi_app
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="arcportal-web")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets here (granian runs with --no-ws)
        try:
            body = await self._read_body(scope, receive)
        except BodyRefused as refused:
            await _plain(send, refused.status, refused.message)
            return
        if body is None:
            return  # the client went away before its request was complete
        environ = build_environ(scope, body)
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(self.pool, self._run, environ, loop, send)
        if answer is not None:
            status, headers, content = answer
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": content})

    async def _read_body(self, scope, receive) -> bytes | None:
        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if not value.isdigit():
                    raise BodyRefused(400, "Bad Content-Length.")
                declared = int(value)
        if declared is not None and declared > self.max_body:
            raise BodyRefused(413, f"The request body is larger than {self.max_body} bytes.")
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout * 6):
                while True:
                    async with asyncio.timeout(self.body_timeout):
                        message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:
                        raise BodyRefused(413, f"The request body is larger than {self.max_body} bytes.")
                    chunks.append(chunk)
                    if not message.get("more_body"):
                        return b"".join(chunks)
        except TimeoutError:
            raise BodyRefused(408, "The request body did not arrive in time.") from None

    def _run(self, environ: dict, loop: asyncio.AbstractEventLoop, send):
        """In a pool thread: the WSGI call and its whole response; (status, headers, body) to send, or None when
        the response was big enough to be streamed from here."""
        started: dict = {}

        def start_response(status, headers, exc_info=None):
            if exc_info and started.get("sent"):
                raise exc_info[1].with_traceback(exc_info[2])
            started["status"] = int(status.split(" ", 1)[0])
            started["headers"] = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
            return written.append

        written: list[bytes] = []
        result = self.app(environ, start_response)
        try:
            buffered, size = written, sum(map(len, written))
            iterator = iter(result)
            for chunk in iterator:
                buffered.append(chunk)
                size += len(chunk)
                if size > STREAM_AFTER_BYTES:
                    self._stream(loop, send, started, buffered, iterator)
                    return None
            return started["status"], started["headers"], b"".join(buffered)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()  # Django's request_finished: this thread's database connection is looked after

    def _stream(self, loop, send, started, buffered: list[bytes], iterator) -> None:
        def emit(message: dict) -> None:
            asyncio.run_coroutine_threadsafe(send(message), loop).result()

        started["sent"] = True
        emit({"type": "http.response.start", "status": started["status"], "headers": started["headers"]})
        emit({"type": "http.response.body", "body": b"".join(buffered), "more_body": True})
        for chunk in iterator:
            if chunk:
                emit({"type": "http.response.body", "body": chunk, "more_body": True})
        emit({"type": "http.response.body", "body": b""})

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.pool.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


def build_environ(scope: dict, body: bytes) -> dict:
    """The WSGI environ of an ASGI HTTP scope (PEP 3333; header bytes as latin-1, as a WSGI server gives them)."""
    root = scope.get("root_path", "")
    path = scope["path"]
    if root and path.startswith(root):
        path = path[len(root) :]
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client")
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root.encode().decode("latin-1"),
        "PATH_INFO": path.encode().decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] if server[1] is not None else 80),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": client[0] if client else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if client:
        environ["REMOTE_PORT"] = str(client[1])
    for raw_name, raw_value in scope.get("headers", ()):
        if b"_" in raw_name:
            continue  # dropped, as gunicorn and nginx do: "X-Forwarded_For" must not pass for X-Forwarded-For
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name == "CONTENT_LENGTH" or name == "CONTENT_TYPE":
            environ[name] = value
            continue
        key = f"HTTP_{name}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    environ.setdefault("CONTENT_LENGTH", str(len(body)) if body else "")
    return environ


async def _plain(send, status: int, message: str) -> None:
    body = message.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    headers.append((b"connection", b"close"))
    with contextlib.suppress(Exception):  # the client may be gone already
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _application() -> BufferedWSGI:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arcportal.settings")
    wsgi = get_wsgi_application()
    from django.conf import settings
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view now, not in the first request of the process

    return BufferedWSGI(
        wsgi,
        threads=settings.ARC_WEB_THREADS,
        max_body=settings.ARC_WEB_MAX_BODY_BYTES,
        body_timeout=settings.ARC_WEB_BODY_TIMEOUT_SECONDS,
    )


application = _application()
