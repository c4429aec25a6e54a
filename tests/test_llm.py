"""LLMSummariser against a loopback OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.llm import LLMConfig, LLMSummariser, build_request, summariser_from_env
from bot.summarise import ExtractiveSummariser, extractive_summary

TITLE = "Meta signs a 2.2 GW power deal for its Ohio AI campus"
TEXT = (
    "Meta agreed to buy power from a utility cooperative for twenty years. "
    "The contract covers 2.2 gigawatts of new generation for the Ohio site. "
    "Construction is set to begin next spring."
)
FALLBACK = extractive_summary(TITLE, TEXT)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FakeEndpoint:
    """Records requests and answers with whatever ``reply`` returns."""

    reply: Handler | None = None
    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append((request.path, dict(request.headers), body))
        assert self.reply is not None
        return await self.reply(request)


def completion(content: Any) -> Handler:
    async def reply(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"id": "x", "object": "chat.completion", "choices": [{"message": content}]}
        )

    return reply


def answer(text: str) -> Handler:
    return completion({"role": "assistant", "content": text})


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[FakeEndpoint, str]]:
    fake = FakeEndpoint()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield fake, f"http://127.0.0.1:{server.port}/v1"
    fake.release.set()
    await server.close()


async def run(base_url: str, api_key: str | None = None, **kw: Any) -> tuple[str, int]:
    config = LLMConfig(base_url=base_url, model="tiny-model", api_key=api_key, **kw)
    async with LLMSummariser(config) as summariser:
        summary = await summariser.summarise(TITLE, TEXT)
        return summary, summariser.fallbacks


async def test_request_shape_and_answer(endpoint: tuple[FakeEndpoint, str]) -> None:
    fake, base_url = endpoint
    fake.reply = answer("Meta will buy 2.2 GW from an Ohio cooperative for twenty years.")
    summary, fallbacks = await run(base_url + "/", api_key="sk-test")
    assert summary == "Meta will buy 2.2 GW from an Ohio cooperative for twenty years."
    assert fallbacks == 0
    [(path, headers, body)] = fake.requests
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert body["model"] == "tiny-model"
    assert body["temperature"] == 0
    assert isinstance(body["max_tokens"], int) and body["max_tokens"] > 0
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user"]
    assert TITLE in body["messages"][1]["content"]
    assert "2.2 gigawatts" in body["messages"][1]["content"]


async def test_no_authorization_header_without_key(endpoint: tuple[FakeEndpoint, str]) -> None:
    fake, base_url = endpoint
    fake.reply = answer("A short summary of the power deal.")
    await run(base_url)
    assert "Authorization" not in fake.requests[0][1]


async def test_long_input_is_bounded(endpoint: tuple[FakeEndpoint, str]) -> None:
    fake, base_url = endpoint
    fake.reply = answer("Summary.")
    config = LLMConfig(base_url=base_url, model="m", api_key=None, max_input_chars=500)
    async with LLMSummariser(config) as summariser:
        await summariser.summarise(TITLE, "gigawatt " * 10_000)
    user = fake.requests[0][2]["messages"][1]["content"]
    assert TITLE in user
    assert user.count("gigawatt") < 60
    assert len(user) <= 500 + len("Title: \n\nArticle:\n")


async def test_markdown_is_stripped_and_answer_capped(endpoint: tuple[FakeEndpoint, str]) -> None:
    fake, base_url = endpoint
    long_md = "**Summary:** Meta [signed](https://x.example) a *huge* deal. " + "word " * 100
    fake.reply = answer(long_md)
    summary, fallbacks = await run(base_url)
    assert fallbacks == 0
    assert summary.startswith("Meta signed a huge deal. word word")
    assert "*" not in summary and "](" not in summary
    assert len(summary) <= 300 and summary.endswith("…")
    assert summary.removesuffix("…").split()[-1] == "word"


async def test_list_answer_becomes_plain_text(endpoint: tuple[FakeEndpoint, str]) -> None:
    fake, base_url = endpoint
    fake.reply = answer("- Meta buys power.\n- Ohio campus grows.")
    summary, _ = await run(base_url)
    assert summary == "Meta buys power. Ohio campus grows."


async def test_slow_server_falls_back_within_timeout(endpoint: tuple[FakeEndpoint, str]) -> None:
    fake, base_url = endpoint

    async def slow(request: web.Request) -> web.StreamResponse:
        await fake.release.wait()
        return web.json_response({})

    fake.reply = slow
    loop = asyncio.get_running_loop()
    started = loop.time()
    summary, fallbacks = await asyncio.wait_for(run(base_url, timeout_s=0.3), timeout=5)
    assert loop.time() - started < 2.0
    assert (summary, fallbacks) == (FALLBACK, 1)


async def test_server_error_falls_back(endpoint: tuple[FakeEndpoint, str]) -> None:
    fake, base_url = endpoint

    async def boom(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": {"message": "overloaded"}}, status=500)

    fake.reply = boom
    assert await run(base_url) == (FALLBACK, 1)


async def test_garbage_json_falls_back(endpoint: tuple[FakeEndpoint, str]) -> None:
    fake, base_url = endpoint

    async def garbage(request: web.Request) -> web.StreamResponse:
        return web.Response(text="{not json at all", content_type="application/json")

    fake.reply = garbage
    assert await run(base_url) == (FALLBACK, 1)


@pytest.mark.parametrize(
    "message",
    [{"role": "assistant", "content": "   "}, {"role": "assistant", "content": None}, "text"],
)
async def test_empty_or_misshapen_answer_falls_back(
    endpoint: tuple[FakeEndpoint, str], message: Any
) -> None:
    fake, base_url = endpoint
    fake.reply = completion(message)
    assert await run(base_url) == (FALLBACK, 1)


async def test_connection_refused_falls_back() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert await run(f"http://127.0.0.1:{port}/v1") == (FALLBACK, 1)


async def test_fallback_is_logged_without_traceback(
    endpoint: tuple[FakeEndpoint, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake, base_url = endpoint
    fake.reply = completion("text")
    await run(base_url)
    [record] = [r for r in caplog.records if r.name == "bot.llm"]
    assert record.exc_info is None
    assert "extractive" in record.getMessage()


def test_summariser_from_env() -> None:
    assert isinstance(summariser_from_env({}), ExtractiveSummariser)
    assert isinstance(
        summariser_from_env({"BRIEFBOT_LLM_BASE_URL": "http://127.0.0.1:1/v1"}),
        ExtractiveSummariser,
    )
    chosen = summariser_from_env(
        {
            "BRIEFBOT_LLM_BASE_URL": "http://127.0.0.1:1/v1",
            "BRIEFBOT_LLM_MODEL": "m",
            "BRIEFBOT_LLM_API_KEY": "k",
        }
    )
    assert isinstance(chosen, LLMSummariser)
    assert chosen.config == LLMConfig("http://127.0.0.1:1/v1", "m", "k")


def test_payload_is_json_serialisable() -> None:
    config = LLMConfig(base_url="http://h", model="m", api_key=None)
    assert json.loads(json.dumps(build_request(config, TITLE, TEXT)))["model"] == "m"
