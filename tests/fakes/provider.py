"""A fake model provider on loopback, speaking the real wire formats of the Anthropic Messages API
(`POST /v1/messages`) and the OpenAI Chat Completions API (`POST /v1/chat/completions`).

Tests script what the "model" answers, point the real SDKs (or a `tpc serve` subprocess, through
`ANTHROPIC_BASE_URL` / `OPENAI_BASE_URL`) at it, and assert on the requests it recorded:

    with FakeProvider() as fake:
        fake.script(Reply.tool("shell", {"command": "ls"}), Reply.say("Done."), when=has_tools)
        fake.script(Reply.rate_limited(retry_after_ms=50), Reply.say("ok"))
        client = anthropic.AsyncAnthropic(api_key="test", base_url=fake.anthropic_url)
        ...
        assert len(fake.requests) == 3

Replies come from rules, tried in the order they were added: a rule is a queue of replies (used
up one per matching request; `repeat_last` keeps answering with the last one) or a function of
the request. A request no rule answers gets `fake.default` (a 400 naming the problem, unless
set). Faults are replies too: HTTP errors with the provider's error body and `Retry-After` /
`retry-after-ms` headers, 529 overloaded, a fixed delay, or a hang that never answers.

Requests are checked the way the real APIs check them (roles alternate, every tool call gets
its result, a key is sent) so that a client bug shows up as the provider's 400, not as a pass.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Api = Literal["anthropic", "openai"]
TEST_KEY = "test-key"


@dataclass(frozen=True, slots=True)
class Call:
    """A tool call the scripted model makes."""

    name: str
    input: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer: a model turn (text, thinking, tool calls) or a fault."""

    text: str | None = None
    calls: tuple[Call, ...] = ()
    thinking: str | None = None
    # Neutral stop override: "max_tokens" (truncated) or "end_turn"; default from the calls.
    stop: str | None = None
    usage: tuple[int, int] | None = None  # (input, output) tokens; default: from sizes
    status: int = 200
    error_message: str = ""
    error_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    hang: bool = False

    @classmethod
    def say(
        cls, text: str, *, thinking: str | None = None, usage: tuple[int, int] | None = None
    ) -> Reply:
        return cls(text=text, thinking=thinking, usage=usage)

    @classmethod
    def tool(
        cls,
        name: str,
        tool_input: Mapping[str, Any] | None = None,
        *,
        text: str | None = None,
        thinking: str | None = None,
        usage: tuple[int, int] | None = None,
    ) -> Reply:
        return cls(text=text, calls=(Call(name, tool_input or {}),), thinking=thinking, usage=usage)

    @classmethod
    def tools(
        cls, *calls: Call, text: str | None = None, usage: tuple[int, int] | None = None
    ) -> Reply:
        return cls(text=text, calls=calls, usage=usage)

    @classmethod
    def truncated(cls, text: str) -> Reply:
        return cls(text=text, stop="max_tokens")

    @classmethod
    def error(
        cls,
        status: int,
        message: str = "",
        *,
        error_type: str | None = None,
        retry_after: float | None = None,
        retry_after_ms: float | None = None,
    ) -> Reply:
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        if retry_after_ms is not None:
            headers["retry-after-ms"] = f"{retry_after_ms:g}"
        return cls(
            status=status,
            error_message=message or f"fake provider error {status}",
            error_type=error_type,
            headers=headers,
        )

    @classmethod
    def rate_limited(
        cls, *, retry_after: float | None = None, retry_after_ms: float | None = None
    ) -> Reply:
        return cls.error(
            429,
            "Rate limit exceeded: too many requests (fake provider)",
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
        )

    @classmethod
    def overloaded(cls) -> Reply:
        return cls.error(529, "Overloaded", error_type="overloaded_error")

    @classmethod
    def server_error(cls) -> Reply:
        return cls.error(500, "Internal server error (fake provider)")

    @classmethod
    def never(cls) -> Reply:
        """Never answers (until the fake stops)."""
        return cls(hang=True)

    def delayed(self, seconds: float) -> Reply:
        """This reply, answered `seconds` late."""
        return replace(self, delay_s=seconds)


@dataclass(frozen=True, slots=True)
class Recorded:
    """A request the fake received, as sent by the client."""

    api: Api
    body: dict[str, Any]
    headers: Mapping[str, str]
    at: float  # time.monotonic() on arrival

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def tool_names(self) -> list[str]:
        tools = self.body.get("tools") or []
        if self.api == "anthropic":
            return [t.get("name", "") for t in tools]
        return [t.get("function", {}).get("name", "") for t in tools]

    @property
    def forced_tool(self) -> str | None:
        choice = self.body.get("tool_choice")
        if not isinstance(choice, dict):
            return None
        if self.api == "anthropic":
            return choice.get("name") if choice.get("type") == "tool" else None
        name = choice.get("function", {}).get("name")
        return str(name) if name else None

    @property
    def system(self) -> str:
        if self.api == "anthropic":
            return _text_of(self.body.get("system") or "")
        return "\n".join(
            _text_of(m.get("content") or "")
            for m in self.body.get("messages", [])
            if m.get("role") in ("system", "developer")
        )

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation without OpenAI's system messages."""
        return [
            m for m in self.body.get("messages", []) if m.get("role") not in ("system", "developer")
        ]

    @property
    def last_user_text(self) -> str:
        """The text of the last user message (tool results are not user text)."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                text = _text_of(message.get("content") or "")
                if text:
                    return text
        return ""

    @property
    def tool_results(self) -> list[str]:
        """The contents of the tool results that end the conversation, in order."""
        results: list[str] = []
        for message in reversed(self.messages):
            if self.api == "openai":
                if message.get("role") != "tool":
                    break
                results.insert(0, _text_of(message.get("content") or ""))
                continue
            content = message.get("content")
            blocks = content if isinstance(content, list) else []
            found = [b for b in blocks if b.get("type") == "tool_result"]
            for block in found:
                results.append(_text_of(block.get("content") or ""))
            break
        return results

    @property
    def text(self) -> str:
        """Everything the request says, for matching."""
        return json.dumps(self.body, ensure_ascii=False)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            _text_of(part.get("text", part.get("content", ""))) if isinstance(part, dict) else ""
            for part in content
        ).strip()
    return ""


Matcher = Callable[[Recorded], bool]
Responder = Callable[[Recorded], Reply]


def has_tools(request: Recorded) -> bool:
    return bool(request.body.get("tools")) and request.forced_tool is None


def forced(tool: str) -> Matcher:
    return lambda request: request.forced_tool == tool


def model(name: str) -> Matcher:
    return lambda request: request.model == name


def api(name: Api) -> Matcher:
    return lambda request: request.api == name


def contains(text: str) -> Matcher:
    return lambda request: text in request.text


@dataclass(slots=True)
class _Rule:
    when: Matcher | None
    replies: deque[Reply] | None = None
    responder: Responder | None = None
    repeat_last: bool = False

    def take(self, request: Recorded) -> Reply | None:
        if self.when is not None and not self.when(request):
            return None
        if self.responder is not None:
            return self.responder(request)
        assert self.replies is not None
        if not self.replies:
            return None
        if len(self.replies) == 1 and self.repeat_last:
            return self.replies[0]
        return self.replies.popleft()


class FakeProvider:
    """The fake provider: a Starlette app served by uvicorn in a background thread."""

    def __init__(self, *, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.default = Reply.error(
            400,
            "fake provider: no scripted reply for this request",
            error_type="invalid_request_error",
        )
        self._rules: list[_Rule] = []
        self._requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests answered at once, for concurrency limits
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        # Made with proto IPPROTO_TCP, so asyncio sets TCP_NODELAY on every accepted
        # connection (it checks the proto): without it, each response after a connection's
        # first waited for the client's delayed ACK of its headers, ~40 ms.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- addresses -----------------------------------------------------------------------------

    @property
    def anthropic_url(self) -> str:
        return self.url  # the SDK appends /v1/messages

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"  # the SDK appends /chat/completions

    def env(self) -> dict[str, str]:
        """Environment variables that point tpc (and the SDKs) at this fake."""
        return {
            "ANTHROPIC_BASE_URL": self.anthropic_url,
            "ANTHROPIC_API_KEY": TEST_KEY,
            "OPENAI_BASE_URL": self.openai_url,
            "OPENAI_API_KEY": TEST_KEY,
        }

    # -- scripting -----------------------------------------------------------------------------

    def script(
        self, *replies: Reply, when: Matcher | None = None, repeat_last: bool = False
    ) -> FakeProvider:
        """Answer matching requests with these replies, one each, in order."""
        with self._lock:
            self._rules.append(_Rule(when, deque(replies), repeat_last=repeat_last))
        return self

    def respond(self, responder: Responder, when: Matcher | None = None) -> FakeProvider:
        """Answer every matching request with `responder(request)`."""
        with self._lock:
            self._rules.append(_Rule(when, responder=responder))
        return self

    def reset(self) -> None:
        with self._lock:
            self._rules.clear()
            self._requests.clear()
            self.max_in_flight = 0

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, which: Api) -> list[Recorded]:
        return [r for r in self.requests if r.api == which]

    def open_connections(self) -> list[socket.socket]:
        """The server's end of every connection clients hold open now (kept alive too)."""
        if self._server is None:
            return []
        connections = list(self._server.server_state.connections)  # one step: thread-safe
        return [c.transport.get_extra_info("socket") for c in connections]

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        app = Starlette(
            routes=[
                Route("/v1/messages", self._anthropic, methods=["POST"]),
                Route("/v1/chat/completions", self._openai, methods=["POST"]),
            ]
        )
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            http="h11",
            ws="none",
            loop="asyncio",
            lifespan="off",
            # Longer than the SDKs keep idle connections (5 s), as real providers do: clients
            # close them, and tests see the connections a client leaves open.
            timeout_keep_alive=60,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake provider did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        loop, closing = self._loop, self._closing
        if loop is not None and closing is not None and not loop.is_closed():
            # Release hanging requests first, so the server can finish them and exit.
            loop.call_soon_threadsafe(closing.set)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving -------------------------------------------------------------------------------

    async def _anthropic(self, request: Request) -> Response:
        return await self._serve(request, "anthropic")

    async def _openai(self, request: Request) -> Response:
        return await self._serve(request, "openai")

    async def _serve(self, request: Request, which: Api) -> Response:
        if self._closing is None:
            self._loop = asyncio.get_running_loop()
            self._closing = asyncio.Event()
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(which, 400, "the request body is not JSON", None, {})
        recorded = Recorded(which, body, dict(request.headers), time.monotonic())
        with self._lock:
            self._requests.append(recorded)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(recorded, which)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _answer(self, recorded: Recorded, which: Api) -> Response:
        assert self._closing is not None
        problem = _check_anthropic(recorded) if which == "anthropic" else _check_openai(recorded)
        if problem is not None:
            status, message = problem
            return _error(which, status, message, None, {})
        reply = self._choose(recorded)
        delay = self.latency_s + reply.delay_s
        if reply.hang:
            await self._closing.wait()
            return _error(which, 503, "the fake provider is shutting down", None, {})
        if delay:
            await asyncio.sleep(delay)
        if reply.status != 200:
            return _error(which, reply.status, reply.error_message, reply.error_type, reply.headers)
        number = next(self._ids)
        if which == "anthropic":
            return JSONResponse(
                _anthropic_message(recorded, reply, number),
                headers={"request-id": f"req_fake_{number}", **reply.headers},
            )
        return JSONResponse(
            _openai_completion(recorded, reply, number),
            headers={"x-request-id": f"req_fake_{number}", **reply.headers},
        )

    def _choose(self, request: Recorded) -> Reply:
        with self._lock:
            for rule in self._rules:
                reply = rule.take(request)
                if reply is not None:
                    return reply
            return self.default


# -- wire formats ------------------------------------------------------------------------------


def _usage(request: Recorded, reply: Reply) -> tuple[int, int]:
    if reply.usage is not None:
        return reply.usage
    produced = (reply.text or "") + (reply.thinking or "")
    produced += "".join(c.name + json.dumps(dict(c.input)) for c in reply.calls)
    # About four characters a token, like the real tokenizers on English text.
    return max(1, math.ceil(len(request.text) / 4)), max(1, math.ceil(len(produced) / 4))


def _anthropic_message(request: Recorded, reply: Reply, number: int) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.thinking is not None:
        content.append(
            {"type": "thinking", "thinking": reply.thinking, "signature": f"fake-sig-{number}"}
        )
    if reply.text is not None:
        content.append({"type": "text", "text": reply.text})
    for index, call in enumerate(reply.calls):
        content.append(
            {
                "type": "tool_use",
                "id": f"toolu_fake_{number}_{index}",
                "name": call.name,
                "input": dict(call.input),
            }
        )
    stop = reply.stop or ("tool_use" if reply.calls else "end_turn")
    token_in, token_out = _usage(request, reply)
    return {
        "id": f"msg_fake_{number}",
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": token_in, "output_tokens": token_out},
    }


def _openai_completion(request: Recorded, reply: Reply, number: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
    if reply.thinking is not None:
        # Not in OpenAI's own API; OpenAI-compatible servers (vLLM, DeepSeek) send it so.
        message["reasoning_content"] = reply.thinking
    if reply.calls:
        message["tool_calls"] = [
            {
                "id": f"call_fake_{number}_{index}",
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(dict(call.input))},
            }
            for index, call in enumerate(reply.calls)
        ]
    stops = {"max_tokens": "length", "end_turn": "stop"}
    finish = stops.get(reply.stop or "", reply.stop) or ("tool_calls" if reply.calls else "stop")
    token_in, token_out = _usage(request, reply)
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {
            "prompt_tokens": token_in,
            "completion_tokens": token_out,
            "total_tokens": token_in + token_out,
        },
    }


_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_OPENAI_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", "service_unavailable"),
}


def _error(
    which: Api, status: int, message: str, error_type: str | None, headers: Mapping[str, str]
) -> Response:
    if which == "anthropic":
        kind = error_type or _ANTHROPIC_ERRORS.get(status, "api_error")
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        default_type, code = _OPENAI_ERRORS.get(status, ("server_error", None))
        body = {
            "error": {
                "message": message,
                "type": error_type or default_type,
                "param": None,
                "code": code,
            }
        }
    return JSONResponse(body, status_code=status, headers=dict(headers))


# -- request checks, as the real APIs make them ------------------------------------------------


def _check_anthropic(request: Recorded) -> tuple[int, str] | None:
    if not request.headers.get("x-api-key") and not request.headers.get("authorization"):
        return 401, "x-api-key header is required"
    body = request.body
    if not isinstance(body.get("model"), str) or not body["model"]:
        return 400, "model: Field required"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return 400, "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return 400, "messages: at least one message is required"
    return _check_anthropic_tools(body) or _check_anthropic_messages(messages)


def _check_anthropic_tools(body: dict[str, Any]) -> tuple[int, str] | None:
    tools = {t.get("name") for t in body.get("tools") or []}
    for tool in body.get("tools") or []:
        if not isinstance(tool.get("input_schema"), dict):
            return 400, f"tools: {tool.get('name')}: input_schema: Field required"
    choice = body.get("tool_choice")
    if (
        isinstance(choice, dict)
        and choice.get("type") == "tool"
        and choice.get("name") not in tools
    ):
        return 400, f"tool_choice: tool {choice.get('name')!r} not found in tools"
    return None


def _check_anthropic_messages(messages: list[Any]) -> tuple[int, str] | None:
    """Roles alternate from the user's, and every tool_use is answered in the next message."""
    expected = "user"
    pending: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role")
        if role != expected:
            return 400, f"messages.{index}.role: roles must alternate user/assistant, got {role}"
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list) or not blocks:
            return 400, f"messages.{index}: content must be non-empty"
        problem = _check_anthropic_blocks(index, role, blocks, pending)
        if problem is not None:
            return problem
        pending = {b.get("id") for b in blocks if b.get("type") == "tool_use"}
        expected = "assistant" if role == "user" else "user"
    return None


def _check_anthropic_blocks(
    index: int, role: str, blocks: list[dict[str, Any]], pending: set[str]
) -> tuple[int, str] | None:
    results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
    if role == "user" and pending - results:
        return 400, (
            f"messages.{index}: tool_use ids were found without tool_result blocks "
            f"immediately after: {', '.join(sorted(pending - results))}"
        )
    if role == "user" and results - pending:
        return 400, f"messages.{index}: unexpected tool_use_id in tool_result blocks"
    for block in blocks:
        if block.get("type") == "text" and not block.get("text"):
            return 400, f"messages.{index}: text content blocks must be non-empty"
        if block.get("type") == "thinking" and not block.get("signature"):
            return 400, f"messages.{index}: thinking.signature: Field required"
    return None


def _check_openai(request: Recorded) -> tuple[int, str] | None:
    if not request.headers.get("authorization", "").startswith("Bearer "):
        return 401, "You didn't provide an API key."
    body = request.body
    if not isinstance(body.get("model"), str) or not body["model"]:
        return 400, "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return 400, "'messages' must contain at least one message"
    pending: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            if message.get("tool_call_id") not in pending:
                return 400, (
                    f"messages.[{index}]: messages with role 'tool' must be a response to a "
                    "preceding message with 'tool_calls'"
                )
            pending.discard(message["tool_call_id"])
            continue
        if pending:
            return 400, (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                f"responding to each 'tool_call_id'. Missing: {', '.join(sorted(pending))}"
            )
        if role not in ("system", "developer", "user", "assistant"):
            return 400, f"messages.[{index}].role: invalid role {role!r}"
        calls = (message.get("tool_calls") or []) if role == "assistant" else []
        pending = {call.get("id") for call in calls}
    return None


# -- pytest ------------------------------------------------------------------------------------


def serving(*, latency_s: float = 0.0) -> Iterator[FakeProvider]:
    """Run a fake provider for the duration of a test (use it from a local fixture)."""
    with FakeProvider(latency_s=latency_s) as fake:
        yield fake


@pytest.fixture
def fake_provider() -> Iterator[FakeProvider]:
    """The fixture, for modules that load this file as a plugin (`pytest_plugins`)."""
    yield from serving()
