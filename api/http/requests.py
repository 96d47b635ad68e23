"""Reading requests: the caller's product, JSON bodies parsed by their models, whole numbers
in paths and queries. Anything malformed is a located 422, never a 500."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from application.service import Service
from domain.errors import InvalidInput, Unauthorized
from domain.problems import problems_from_pydantic
from domain.safe_text import require_safe_text
from infra.settings import Limits
from infra.store.database import GuardFailed

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# Bodies larger than this are decoded in a thread: the event loop keeps answering meanwhile.
OFF_LOOP_BYTES = 256 * 1024
# Deeper JSON is refused: no definition nests this far, and deeper values would risk the
# recursion limit wherever they are copied or encoded later.
MAX_JSON_DEPTH = 64
# The largest number a path or query may carry: every store holds 64-bit integers.
MAX_NUMBER = 2**53
PAGE_LIMIT = 500


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def limits(request: Request) -> Limits:
    found: Limits = request.app.state.limits
    return found


async def product(request: Request) -> str:
    """The product the bearer token belongs to; 401 otherwise. Every `/v1` endpoint starts
    here (or in `for_owner`), so the path's and the query's text is checked here too (422)."""
    token = bearer_token(request)
    return await run_in_threadpool(_owner, request, token)


async def for_owner(request: Request, answer: Callable[[str], T]) -> T:
    """`answer(owner)` for the token's product, computed with the token's check in one thread
    hop (under load each hop waits for the GIL on both sides): the endpoints without a body.
    The answer parses the path and query itself, so a bad token stays a 401 before any 422."""
    token = bearer_token(request)
    return await run_in_threadpool(_answer_for_owner, request, token, answer)


def _answer_for_owner(request: Request, token: str, answer: Callable[[str], T]) -> T:
    catalog = service(request).catalog
    # The request acts on the product the token acted for last, its check sent with the first
    # query (`application/owner_guesses.py`) and read before any write.
    guess = catalog.owner_guess(token)
    if guess is not None:
        with contextlib.suppress(GuardFailed), catalog.confirming_owner(guess) as owner:
            require_safe_parameters(request)
            return answer(owner)
        # The token no longer acts for that product: the full check below says what it is.
    return answer(_owner(request, token))


async def for_owner_with_body(request: Request, answer: Callable[[str, dict[str, Any]], T]) -> T:
    """`answer(owner, body)` for the token's product and the request's JSON body (as
    `json_body` checks it), in one thread hop: a hop's way back waits for the event loop's
    turn, which under load on PostgreSQL is tens of milliseconds. A bad token stays a 401
    before any 422 of its body (on a guess, the failed check outranks what the body raised)."""
    token = bearer_token(request)
    raw = await request.body()  # capped by the BodyLimit middleware
    return await run_in_threadpool(
        _answer_for_owner, request, token, lambda owner: answer(owner, decode_json_object(raw))
    )


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    return token.strip()


def _owner(request: Request, token: str) -> str:
    found = service(request).catalog.product_for_token(token)
    if found is None:
        raise Unauthorized("unknown API token")
    require_safe_parameters(request)
    return found


def require_safe_parameters(request: Request) -> None:
    """Path and query values no store could hold (NUL, a lone surrogate) name nothing: a
    located 422 before they reach a query (PostgreSQL refuses NUL in text)."""
    values = {**dict(request.query_params.multi_items()), **request.path_params}
    require_safe_text({str(k): v for k, v in values.items()}, "the request's path or query")


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object whose every string can be stored (422 otherwise)."""
    raw = await request.body()  # capped by the BodyLimit middleware
    if len(raw) > OFF_LOOP_BYTES:
        return await run_in_threadpool(decode_json_object, raw)
    return decode_json_object(raw)


def decode_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        body = None
        too_deep = True
    except ValueError as error:
        reason = str(error).splitlines()[0][:200]
        raise InvalidInput(
            f"the request body is not valid JSON: {reason}", (("", "not valid JSON"),)
        ) from None
    else:
        too_deep = _deeper_than(body, MAX_JSON_DEPTH)
    if too_deep:
        raise InvalidInput(
            f"the request body nests deeper than {MAX_JSON_DEPTH} levels",
            (("", f"nests deeper than {MAX_JSON_DEPTH} levels"),),
        )
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object", (("", "must be an object"),))
    require_safe_text(body, "the request body")
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is too large a number")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse(model: type[M], body: dict[str, Any], what: str) -> M:
    """`body` as `model`, or a 422 naming every problem's location."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        problems = problems_from_pydantic(error, document=body)
        summary = "; ".join(str(p) for p in problems[:3])
        raise InvalidInput(
            f"{what}: {summary}", tuple((p.loc, p.message) for p in problems)
        ) from None


def whole_number(raw: str, name: str, minimum: int = 0, maximum: int = MAX_NUMBER) -> int:
    """A path or query value as a bounded whole number (ASCII digits only: "²".isdigit())."""
    if not _bounded_digits(raw, minimum, maximum):
        raise InvalidInput(
            f"{name} must be a whole number from {minimum} to {maximum} (got {raw[:40]!r})",
            ((name, f"must be a whole number from {minimum} to {maximum}"),),
        )
    return int(raw)


def _bounded_digits(raw: str, minimum: int, maximum: int) -> bool:
    return raw.isascii() and raw.isdigit() and len(raw) <= 30 and minimum <= int(raw) <= maximum


def query_number(request: Request, name: str, minimum: int = 0) -> int | None:
    raw = request.query_params.get(name)
    return None if raw is None else whole_number(raw, name, minimum)


def paging(request: Request) -> tuple[int, str | None]:
    limit = whole_number(request.query_params.get("limit", "50"), "limit", 1, PAGE_LIMIT)
    cursor = request.query_params.get("cursor") or None  # `cursor=` is the first page
    if cursor is not None:
        whole_number(cursor, "cursor")  # the position a previous page handed out
    return limit, cursor


def iteration_number(request: Request) -> int | str:
    raw = str(request.path_params["n"])
    if raw == "latest":
        return raw
    if not _bounded_digits(raw, 0, MAX_NUMBER):
        raise InvalidInput(
            f"iteration must be a number or 'latest' (got {raw[:40]!r})",
            (("n", "must be a number or 'latest'"),),
        )
    return int(raw)


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a synchronous service call off the event loop."""
    return await run_in_threadpool(function, *args, **kwargs)


def start_runs(request: Request, exp_id: str, number: int) -> None:
    """Hand a new iteration's runs to this process's executor, or on PostgreSQL to the job
    queue, without waiting (with `serve --no-workers` on SQLite, nothing runs them here)."""
    executor = request.app.state.executor
    if executor is not None:
        executor.start(exp_id, number)
