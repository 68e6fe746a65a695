"""``arcportal/asgi_buffered.py``: a request reaches the WSGI application only whole, within the size and time
limits (413, 408); responses come back whole or, when large, streamed from the thread that made them."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from arcportal.asgi_buffered import STREAM_AFTER_BYTES, BufferedWSGI, build_environ


def scope(method="POST", path="/his/x", headers=(), query=b"", **extra):
    return {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "root_path": "",
        "query_string": query,
        "headers": list(headers),
        "server": ("127.0.0.1", 8443),
        "client": ("10.1.2.3", 50000),
        **extra,
    }


class Recorder:
    def __init__(self) -> None:
        self.seen: list[dict] = []
        self.threads: set[int] = set()

    def __call__(self, environ, start_response):
        self.threads.add(threading.get_ident())
        self.seen.append({**environ, "body": environ["wsgi.input"].read()})
        start_response("201 Created", [("Content-Type", "application/json"), ("X-Test", "1")])
        return [b'{"ok":', b" true}"]


def run(app, scope, messages, *, timeout=5.0):
    """Drive one ASGI call: ``messages`` are what receive() returns in turn (then it waits for ever)."""
    sent: list[dict] = []

    async def go():
        queue = list(messages)

        async def receive():
            if queue:
                return queue.pop(0)
            await asyncio.sleep(3600)

        async def send(message):
            sent.append(message)

        await asyncio.wait_for(app(scope, receive, send), timeout)

    # A thread of its own: a browser test earlier in the session may have left an event loop running in this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, go()).result()
    return sent


def chunk(body: bytes, more: bool = False) -> dict:
    return {"type": "http.request", "body": body, "more_body": more}


def test_the_body_arrives_whole_and_the_answer_goes_back():
    recorder = Recorder()
    app = BufferedWSGI(recorder, threads=2, max_body=1000, body_timeout=1)
    sent = run(app, scope(headers=[(b"content-type", b"application/json")]), [chunk(b'{"a":', True), chunk(b" 1}")])
    assert recorder.seen[0]["body"] == b'{"a": 1}'
    assert recorder.seen[0]["CONTENT_LENGTH"] == "8"
    assert sent[0] == {
        "type": "http.response.start",
        "status": 201,
        "headers": [(b"content-type", b"application/json"), (b"x-test", b"1")],
    }
    assert sent[1] == {"type": "http.response.body", "body": b'{"ok": true}'}


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read():
    recorder = Recorder()
    app = BufferedWSGI(recorder, threads=1, max_body=10, body_timeout=1)
    sent = run(app, scope(headers=[(b"content-length", b"11")]), [])  # nothing sent: never read
    assert sent[0]["status"] == 413 and not recorder.seen
    assert (b"connection", b"close") in sent[0]["headers"]


def test_a_body_growing_over_the_limit_without_a_length_is_refused():
    recorder = Recorder()
    app = BufferedWSGI(recorder, threads=1, max_body=10, body_timeout=1)
    sent = run(app, scope(), [chunk(b"x" * 6, True), chunk(b"x" * 6, True)])
    assert sent[0]["status"] == 413 and not recorder.seen


def test_a_body_that_stops_arriving_is_refused_with_408_and_holds_no_thread():
    recorder = Recorder()
    app = BufferedWSGI(recorder, threads=1, max_body=1000, body_timeout=0.2)
    sent = run(app, scope(headers=[(b"content-length", b"100")]), [chunk(b"half", True)])
    assert sent[0]["status"] == 408 and not recorder.seen


def test_a_client_gone_before_its_request_was_complete_gets_nothing():
    recorder = Recorder()
    app = BufferedWSGI(recorder, threads=1, max_body=1000, body_timeout=1)
    assert run(app, scope(), [chunk(b"half", True), {"type": "http.disconnect"}]) == []
    assert not recorder.seen


def test_bad_content_length_is_400():
    app = BufferedWSGI(Recorder(), threads=1, max_body=1000, body_timeout=1)
    assert run(app, scope(headers=[(b"content-length", b"-1")]), [])[0]["status"] == 400


def test_a_large_response_is_streamed_from_the_thread_that_made_it_and_closed_there():
    threads: dict[str, int] = {}

    class Big:
        def __iter__(self):
            threads["iterated"] = threading.get_ident()
            for _ in range(3):
                yield b"x" * (STREAM_AFTER_BYTES // 2 + 1)

        def close(self):
            threads["closed"] = threading.get_ident()

    def application(environ, start_response):
        threads["called"] = threading.get_ident()
        start_response("200 OK", [("Content-Type", "text/csv")])
        return Big()

    app = BufferedWSGI(application, threads=2, max_body=1000, body_timeout=1)
    sent = run(app, scope(method="GET"), [chunk(b"")])
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert len(body) == 3 * (STREAM_AFTER_BYTES // 2 + 1)
    assert sent[-1] == {"type": "http.response.body", "body": b""}
    assert all(m.get("more_body") for m in sent[1:-1])
    assert threads["called"] == threads["iterated"] == threads["closed"] != threading.get_ident()


def test_lifespan_is_answered():
    app = BufferedWSGI(Recorder(), threads=1, max_body=10, body_timeout=1)
    sent = run(app, {"type": "lifespan"}, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/a b/ü", "/a b/\u00c3\u00bc"), ("/subscriptions/x/resourceGroups/rg", "/subscriptions/x/resourceGroups/rg")],
)
def test_environ_follows_pep_3333(path, expected):
    environ = build_environ(
        scope(
            path=path,
            query=b"api-version=2024-07-10&x=%20",
            headers=[
                (b"host", b"arc.example.com"),
                (b"content-type", b"application/json"),
                (b"x-forwarded-for", b"1.2.3.4"),
                (b"x-forwarded_for", b"6.6.6.6"),
                (b"accept", b"a"),
                (b"accept", b"b"),
            ],
        ),
        b"",
    )
    assert environ["PATH_INFO"] == expected  # UTF-8 bytes as latin-1 text, as WSGI servers give them
    assert environ["QUERY_STRING"] == "api-version=2024-07-10&x=%20"
    assert environ["HTTP_HOST"] == "arc.example.com" and environ["CONTENT_TYPE"] == "application/json"
    assert environ["HTTP_X_FORWARDED_FOR"] == "1.2.3.4"  # the underscore twin is dropped, not merged
    assert environ["HTTP_ACCEPT"] == "a,b"
    assert environ["REMOTE_ADDR"] == "10.1.2.3" and environ["wsgi.url_scheme"] == "https"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("127.0.0.1", "8443")


def test_the_portal_answers_through_it(db):
    """Django's own WSGI handler behind it: the sign-in page, and a form body read by the input guard."""
    from django.core.handlers.wsgi import WSGIHandler

    app = BufferedWSGI(WSGIHandler(), threads=2, max_body=100_000, body_timeout=1)
    page = run(app, scope(method="GET", path="/accounts/login/", headers=[(b"host", b"127.0.0.1")]), [chunk(b"")])
    assert page[0]["status"] == 200 and b"<form" in page[1]["body"]
    nul = run(
        app,
        scope(
            path="/accounts/login/",
            headers=[(b"host", b"127.0.0.1"), (b"content-type", b"application/x-www-form-urlencoded")],
        ),
        [chunk(b"username=a%00b&password=x")],
    )
    assert nul[0]["status"] == 400  # the input guard read the buffered body and refused the NUL
