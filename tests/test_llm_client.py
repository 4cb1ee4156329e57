"""The chat-completions client against a fake server on 127.0.0.1: answers, retries on 429 and
500 with backoff, timeouts, malformed replies, a refused key, and no key in any message."""

from __future__ import annotations

import itertools

import pytest

from labeling.weak.llm_client import ChatClient, KeyRefused, LLMError, server_name
from tests.fake_llm import completion, fake_llm

KEY = "sk-test-0123456789abcdef"
ASK = [{"role": "user", "content": "Is this spam? buy pills"}]


def _client(url: str, **options) -> ChatClient:
    waits: list[float] = []
    options.setdefault("api_key", KEY)
    client = ChatClient(url, "tiny", key_name="LLM_KEY", sleep=waits.append, **options)
    client.waits = waits  # type: ignore[attr-defined]
    return client


def test_an_answer_with_its_tokens_and_what_was_sent():
    with fake_llm(lambda _p: (200, completion("spam", 17), 0), key=KEY) as server:
        reply = _client(server.url).complete(ASK, max_tokens=5)
    assert (reply.text, reply.tokens) == ("spam", 17)
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == f"Bearer {KEY}"
    assert sent["body"] == {"model": "tiny", "messages": ASK, "temperature": 0, "max_tokens": 5}


def test_429_and_500_are_retried_with_growing_waits():
    replies = itertools.chain(
        [(429, {"error": "slow down"}, 0), (500, "oops", 0), (503, "busy", 0)],
        itertools.repeat((200, completion("ham"), 0)),
    )
    with fake_llm(lambda _p: next(replies)) as server:
        client = _client(server.url, retries=3, backoff=0.5)
        assert client.complete(ASK, max_tokens=5).text == "ham"
    assert len(server.requests) == 4
    assert client.waits == [0.5, 1.0, 2.0]


def test_giving_up_says_what_happened_and_never_the_key():
    with fake_llm(lambda _p: (500, "down", 0)) as server:
        client = _client(server.url, retries=2)
        with pytest.raises(LLMError) as caught:
            client.complete(ASK, max_tokens=5)
    assert str(caught.value) == f"{server_name(server.url)}: HTTP 500 after 3 tries"
    assert KEY not in str(caught.value)


def test_a_timeout_is_retried_then_reported():
    with fake_llm(lambda _p: (200, completion("spam"), 1.0)) as server:
        client = _client(server.url, timeout=0.2, retries=1)
        with pytest.raises(LLMError, match="no answer in time after 2 tries"):
            client.complete(ASK, max_tokens=5)


def test_a_refused_key_stops_at_once_and_names_the_variable_not_the_key():
    with fake_llm(lambda _p: (200, completion("spam"), 0), key="the-right-key") as server:
        client = _client(server.url + "?api-key=" + KEY, retries=3)
        with pytest.raises(KeyRefused) as caught:
            client.complete(ASK, max_tokens=5)
    message = str(caught.value)
    assert "refused the key (the variable LLM_KEY): HTTP 401" in message
    assert KEY not in message and "api-key" not in message
    assert len(server.requests) == 1 and client.waits == []


@pytest.mark.parametrize("payload", ["not json", {"choices": []}, {"nothing": 1}])
def test_a_malformed_reply_is_an_error(payload):
    with fake_llm(lambda _p: (200, payload, 0)) as server:
        client = _client(server.url, retries=0)
        with pytest.raises(LLMError, match="not a chat completion"):
            client.complete(ASK, max_tokens=5)


def test_a_base_url_must_be_http():
    with pytest.raises(Exception, match="expected an http:// or https:// address"):
        ChatClient("ftp://user:pw@example.org/v1", "m", api_key=None)
    assert server_name("https://user:secret@api.example.org:8443/v1?key=x") == (
        "https://api.example.org:8443"
    )
