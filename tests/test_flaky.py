"""The flaky proxy: each fault breaks one reply as a bad network does; the others pass through."""

import gzip
import http.client
import json
import zlib
from urllib.parse import urlsplit

import pytest

from sb3_llmae.testing.flaky import FlakyProxy


def post(proxy: FlakyProxy) -> http.client.HTTPResponse:
    parts = urlsplit(proxy.base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    connection.request(
        "POST", f"{parts.path}/chat/completions", body=body, headers={"Content-Type": "application/json"}
    )
    return connection.getresponse()


def test_replies_pass_through_after_the_scripted_faults(fake_openai_server):
    with FlakyProxy(fake_openai_server.base_url) as proxy:
        proxy.enqueue("drop")
        with pytest.raises(http.client.RemoteDisconnected):
            post(proxy)
        reply = json.loads(post(proxy).read())
    assert reply["choices"][0]["message"]["content"] == "echo: hi"
    assert proxy.faults_served == ["drop", "forwarded"]


def test_cut_sends_half_the_body(fake_openai_server):
    with FlakyProxy(fake_openai_server.base_url, always="cut") as proxy:
        response = post(proxy)
        assert response.status == 200
        with pytest.raises(http.client.IncompleteRead):
            response.read()


def test_reset_resets_the_connection(fake_openai_server):
    with (
        FlakyProxy(fake_openai_server.base_url, always="reset") as proxy,
        pytest.raises(ConnectionResetError),
    ):
        post(proxy).read()


def test_garbled_announces_gzip_and_sends_plain_json(fake_openai_server):
    with FlakyProxy(fake_openai_server.base_url, always="garbled") as proxy:
        response = post(proxy)
        assert response.getheader("Content-Encoding") == "gzip"
        body = response.read()
    with pytest.raises((OSError, zlib.error)):
        gzip.decompress(body)


def test_unknown_faults_are_refused(fake_openai_server):
    with pytest.raises(ValueError, match="Unknown fault"):
        FlakyProxy(fake_openai_server.base_url, always="explode")  # type: ignore[arg-type]
    with FlakyProxy(fake_openai_server.base_url) as proxy, pytest.raises(ValueError, match="Unknown fault"):
        proxy.enqueue("explode")  # type: ignore[arg-type]
