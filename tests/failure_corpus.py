"""A labelled corpus of failing runs, generated from a seed: each run's true root cause is known.

Every cause is hit across several places (hosts, pages, endpoints, packages, commands, tasks)
with different wording, ids and numbers, and the corpus holds the cases that fooled earlier
rules: misleading words in URLs (a 404 on `/guides/rate-limits`), errors quoted in docs text
(a page explaining what a 401 means), a `FileNotFoundError` from `read_doc`, several causes in
one run (its decisive cause is the label: a 401 before the 404s the agent met guessing around
it; a pending call the time limit cut after an earlier error), loops without any error.

`purity_and_completeness` measures a clustering against the labels. Run this module to print
the rules' figures: `python -m tests.failure_corpus`.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from domain.clusters import FailingRun
from domain.transcripts import transcript_from_object

HOSTS = ("api.stripe.com", "api.twilio.com", "api.acme.com", "hooks.slack.com", "api.github.com")
TASKS = ("install-sdk", "create-customer", "refund", "webhook", "list-jobs", "send-sms")
ENVS = ("claude-docs", "gpt-nodocs", "gemini-docs")
DOCS_HOSTS = ("docs.acme.test", "docs.stripe.com", "developer.acme.test")
PAGES = (
    "refunds",
    "webhooks",
    "rate-limits",
    "authentication",
    "timeouts",
    "errors",
    "idempotency",
)
RESOURCES = ("customers", "payments", "refunds", "messages", "jobs", "rate-limits", "auth/tokens")
SHELLS = ("shell", "bash")

Step = tuple[str, str, dict[str, Any], str, bool]  # text, tool, input, result, is_error
Case = tuple[list[Step], str, str | None, str | None, tuple[str, dict[str, Any]] | None, str | None]
# (steps, status, termination reason, final answer, pending call, runner error)


@dataclass(frozen=True, slots=True)
class Labelled:
    run: FailingRun
    cause: str  # the true cause key
    adversarial: str | None = None  # what makes the case hard, when it is


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _url(rng: random.Random, host: str | None = None) -> str:
    host = host or rng.choice(HOSTS)
    resource = rng.choice(RESOURCES)
    prefix = rng.choice(["cus", "pay", "job"])
    return f"https://{host}/v{rng.randint(1, 3)}/{resource}/{prefix}_{_hex(rng, 8)}"


def _docs_read(rng: random.Random) -> Step:
    page = rng.choice(PAGES)
    return (
        "Reading the docs.",
        "read_doc",
        {"path": f"guides/{page}.md"},
        f"# {page}\nSee the API.",
        False,
    )


def _quoting_doc(rng: random.Random) -> Step:
    """A docs page that quotes errors: content, not a failure."""
    body = rng.choice(
        [
            "# Errors\nA `401 Unauthorized` means the key is wrong. `429 Too Many Requests` "
            "means slow down. Example:\nHTTP/1.1 401 Unauthorized",
            "# Troubleshooting\nIf you see `Traceback (most recent call last)` and "
            "`TimeoutError: timed out`, retry. A 503 Service Unavailable is transient.",
            "# Rate limits\nWhen rate limited you get HTTP/1.1 429 Too Many Requests.",
        ]
    )
    return (
        "Checking the error reference.",
        "read_doc",
        {"path": "reference/errors.md"},
        body,
        False,
    )


def _shell(command: str, result: str, error: bool = True, text: str = "Running it.") -> Step:
    return (text, "shell", {"command": command}, result, error)


# --- one generator per cause: (steps, status, reason, final, pending, runner error) -------------


def _auth(rng: random.Random) -> tuple[Case, str | None]:
    host = rng.choice(HOSTS)
    url = _url(rng, host)
    key = f"sk_{rng.choice(['test', 'live'])}_{_hex(rng, 10)}"
    result = rng.choice(
        [
            'HTTP/1.1 401 Unauthorized {"error":"invalid api key","request_id":"req_'
            + _hex(rng, 8)
            + '"}',
            f"acme.errors.AuthenticationError: 401: the API key {key} is not valid",
            f"HTTP/2 403 Forbidden: this key cannot access {url}",
            f'{{"message": "Bad credentials", "status": "401"}} from {url}',
            f"stripe.error.AuthenticationError: Invalid API Key provided: {key[:12]}****",
        ]
    )
    steps = [_docs_read(rng), _shell(f"curl -H 'Authorization: Bearer {key}' {url}", result)]
    tricky = None
    if rng.random() < 0.35:  # guesses other endpoints after the 401: 404s, a consequence
        tricky = "several causes: 401 then 404s"
        steps.append(_shell(f"curl {_url(rng, host)}", "HTTP/1.1 404 Not Found"))
    final = rng.choice(
        ["Every request is rejected; I could not authenticate.", "Blocked on the API key.", "Done."]
    )
    return (steps, "failed", "completed", final, None, None), tricky


def _rate_limit(rng: random.Random) -> tuple[Case, str | None]:
    host = rng.choice(HOSTS)
    result = rng.choice(
        [
            "HTTP/1.1 429 Too Many Requests\nRetry-After: 30",
            f"openai.RateLimitError: Rate limit reached for requests (request {_hex(rng, 10)})",
            f"Error 429: slow down, {rng.randint(2, 90)} requests per second exceeded on {host}",
            "twilio.base.exceptions.TwilioRestException: HTTP 429 error: Too Many Requests",
        ]
    )
    steps = [_shell(f"curl https://{host}/v1/{rng.choice(RESOURCES)}", result)]
    tricky = None
    if rng.random() < 0.3:
        tricky = "a docs 404 earlier in the run"
        steps.insert(
            0, ("Reading.", "read_doc", {"path": "guides/batching.md"}, "404 page not found", True)
        )
    return (steps, "failed", "completed", "The API kept throttling me.", None, None), tricky


def _server_error(rng: random.Random) -> tuple[Case, str | None]:
    host = rng.choice(HOSTS)
    result = rng.choice(
        [
            "HTTP/1.1 500 Internal Server Error",
            f"HTTP/1.1 502 Bad Gateway from {host}",
            f"requests.exceptions.HTTPError: 503 Server Error: Service Unavailable for url: https://{host}/v1/x",
            f'{{"error": {{"code": 500, "message": "internal error, trace {_hex(rng, 12)}"}}}}',
        ]
    )
    steps = [_shell(f"python call.py --host https://{host}/v2/{rng.choice(RESOURCES)}", result)]
    return (steps, "failed", "completed", "The service is failing.", None, None), None


def _service_timeout(rng: random.Random) -> tuple[Case, str | None]:
    url = _url(rng)
    variant = rng.randrange(4)
    tricky = None
    if variant == 0:
        result = (
            f"curl: (28) Operation timed out after {rng.randint(30000, 99999)} milliseconds "
            "with 0 bytes received"
        )
    elif variant == 1:
        host = url.split("/")[2]
        result = (
            f"requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='{host}', port=443): "
            "Read timed out. (read timeout=30)"
        )
    elif variant == 2:
        result = "HTTP/1.1 504 Gateway Timeout"
    else:  # the time limit ended the run during the call, after an earlier unrelated error
        tricky = "several causes: an earlier TypeError, then a pending call"
        steps = [_shell("python main.py", "TypeError: create() got an unexpected keyword 'x'")]
        return (
            steps,
            "timed_out",
            "timeout",
            None,
            ("shell", {"command": f"curl {url}"}),
            None,
        ), tricky
    steps = [_shell(f"curl -s {url}", result)]
    return (steps, "failed", "completed", "The API did not respond.", None, None), tricky


def _unreachable(rng: random.Random) -> tuple[Case, str | None]:
    host = rng.choice(HOSTS)
    result = rng.choice(
        [
            f"curl: (6) Could not resolve host: {host}",
            f"requests.exceptions.ConnectionError: HTTPSConnectionPool(host='{host}', "
            "port=443): Max retries exceeded (Failed to establish a new connection: [Errno 111] "
            "Connection refused)",
            f"Error: connect ECONNREFUSED 10.0.{rng.randint(0, 9)}.{rng.randint(1, 250)}:443 (https://{host}/v1)",
        ]
    )
    steps = [_shell(f"curl https://{host}/v1/{rng.choice(RESOURCES)}", result)]
    return (steps, "failed", "completed", "I could not reach the API.", None, None), None


def _docs_page_missing(rng: random.Random) -> tuple[Case, str | None]:
    page = rng.choice(PAGES)
    host = rng.choice(DOCS_HOSTS)
    url = f"https://{host}/guides/{page}"
    variant = rng.randrange(4)
    tricky = (
        "misleading words in the URL"
        if page in ("rate-limits", "authentication", "timeouts")
        else None
    )
    if variant == 0:
        step: Step = ("Reading.", "fetch_url", {"url": url}, f"404 Not Found: {url}", True)
    elif variant == 1:
        missing = f"No such file or directory: 'docs/guides/{page}.md'"
        step = ("Reading.", "read_doc", {"path": f"guides/{page}.md"},
                f"FileNotFoundError: [Errno 2] {missing}", True)  # fmt: skip
        tricky = "FileNotFoundError from read_doc"
    elif variant == 2:
        step = _shell(
            f"curl -sf {url}?ref=search",
            f"curl: (22) The requested URL returned error: 404 ({url})",
        )
    else:
        path = f"{page}/overview.md"
        step = ("Reading.", "read_doc", {"path": path}, f"Error: page '{path}' not found", True)
    steps = [
        ("Searching.", "search_docs", {"query": page.replace("-", " ")}, f"{page}.md", False),
        step,
    ]
    return (steps, "failed", "completed", "The guide is missing.", None, None), tricky


def _endpoint_missing(rng: random.Random) -> tuple[Case, str | None]:
    host = rng.choice(HOSTS)
    resource = rng.choice(RESOURCES)
    url = f"https://{host}/v{rng.randint(1, 3)}/{resource}"
    result = rng.choice(
        [
            f"HTTP/1.1 404 Not Found ({url})",
            f'{{"error": "No such route: POST /v1/{resource}", "status": 404}}',
            "HTTP/1.1 405 Method Not Allowed",
            f"acme.errors.NotFoundError: 404 Unrecognized request URL {url}",
        ]
    )
    tricky = "misleading words in the URL" if resource in ("rate-limits", "auth/tokens") else None
    steps = [_docs_read(rng), _shell(f"curl -X POST {url}", result)]
    return (steps, "failed", "completed", "That endpoint does not exist.", None, None), tricky


def _invalid_request(rng: random.Random) -> tuple[Case, str | None]:
    url = _url(rng)
    result = rng.choice(
        [
            'HTTP/1.1 422 Unprocessable Entity {"error":"amount must be an integer",'
            f'"param":"amount"}} {url}',
            f"HTTP/1.1 400 Bad Request: missing required param 'currency' ({url})",
            "pydantic_core._pydantic_core.ValidationError: 1 validation error for Refund\n"
            "amount\n  Input should be a valid integer",
            f"HTTP/1.1 409 Conflict: idempotency key reused ({url})",
        ]
    )
    steps = [_shell(f"curl -d amount=12.5 {url}", result)]
    return (steps, "failed", "completed", "The API rejected my request.", None, None), None


def _dependency_missing(rng: random.Random) -> tuple[Case, str | None]:
    package = rng.choice(["acme", "stripe", "twilio", "acme_sdk", "jq"])
    command, result = rng.choice(
        [
            ("python main.py", "Traceback (most recent call last):\n  File \"main.py\", "
             f"line 1\nModuleNotFoundError: No module named '{package}'"),
            (f"pip install {package}-sdk==9.{rng.randint(0, 9)}",
             f"ERROR: No matching distribution found for {package}-sdk==9.1"),
            (f"{package} --version", f"bash: {package}: command not found"),
            ("node index.js", f"Error: Cannot find module '{package}'"),
        ]
    )  # fmt: skip
    steps = [_shell(command, result)]
    return (steps, "failed", "completed", "The SDK is not installed.", None, None), None


def _hung_command(rng: random.Random) -> tuple[Case, str | None]:
    command = rng.choice(
        [
            "npm init",
            "python manage.py migrate",
            "ssh-keygen -t ed25519",
            "acme login",
            "git rebase -i HEAD~3",
        ]
    )
    if rng.random() < 0.5:
        steps = [_shell(command, f"Command timed out after {rng.choice([30, 60, 120])} s")]
        return (steps, "failed", "completed", "The command hangs.", None, None), None
    # The time limit ended the run while the command waited for input: no service involved.
    pending = (rng.choice(SHELLS), {"command": command})
    return ([_docs_read(rng)], "timed_out", "timeout", None, pending, None), None


def _tool_error(rng: random.Random) -> tuple[Case, str | None]:
    result = rng.choice(
        [
            "TypeError: create() got an unexpected keyword argument 'amount'",
            'Traceback (most recent call last):\n  File "x.py", line 3\n'
            "TypeError: refund() missing 1 required positional argument: 'charge'",
            "TypeError: Cannot read properties of undefined (reading "
            f"'{rng.choice(['id', 'data'])}')",
        ]
    )
    tricky = None
    reason = "completed"
    if rng.random() < 0.4:  # looped on the error to the step limit: the error decides
        tricky = "several causes: an error, then the step limit"
        reason = "max_steps"
    steps = [_docs_read(rng), _shell(f"python {rng.choice(TASKS)}.py", result)]
    return (steps, "failed", reason, "It fails.", None, None), tricky


def _doc_loop(rng: random.Random) -> tuple[Case, str | None]:
    page = rng.choice(PAGES)
    reads = rng.randint(3, 8)
    steps = [
        (
            "Reading again.",
            "read_doc",
            {"path": f"guides/{page}.md"},
            f"# {page}\nSome text.",
            False,
        )
        for _ in range(reads)
    ]
    tricky = None
    if rng.random() < 0.5:
        tricky = "errors quoted in the docs text"
        steps.insert(0, _quoting_doc(rng))
    return (steps, "failed", "max_steps", None, None, None), tricky


def _step_limit(rng: random.Random) -> tuple[Case, str | None]:
    steps = [
        _shell(f"ls {d}", "main.py README.md", error=False)
        for d in ("src", "tests", "docs", "build")[: rng.randint(2, 4)]
    ]
    return (steps, "failed", "max_steps", None, None, None), None


def _gave_up(rng: random.Random) -> tuple[Case, str | None]:
    final = rng.choice(
        [
            "I could not find a way to issue a partial refund; as a workaround, do it by hand "
            "in the dashboard.",
            "Giving up: there is no way to do this through the API.",
            "I'm unable to register the webhook; you will need to do it manually.",
        ]
    )
    steps = [_docs_read(rng)]
    tricky = None
    if rng.random() < 0.4:
        tricky = "errors quoted in the docs text"
        steps.append(_quoting_doc(rng))
    return (steps, "failed", "completed", final, None, None), tricky


def _wrong_answer(rng: random.Random) -> tuple[Case, str | None]:
    final = rng.choice(
        [
            f"Done: created customer cus_{_hex(rng, 6)} named Ada.",
            f"The refund of {rng.randint(1, 99)} EUR was issued.",
            "All jobs listed: 3 jobs.",
        ]
    )
    steps = [_docs_read(rng), _shell("python main.py", "ok", error=False)]
    tricky = None
    if rng.random() < 0.3:
        tricky = "errors quoted in the docs text"
        steps.insert(0, _quoting_doc(rng))
    return (steps, "failed", "completed", final, None, None), tricky


def _runner_error(rng: random.Random) -> tuple[Case, str | None]:
    error = rng.choice(
        [
            "anthropic.InternalServerError: Error code: 529 - overloaded",
            "sandbox crashed: OSError: [Errno 28] No space left on device",
            "model provider returned no content after 3 retries",
        ]
    )
    steps = [_docs_read(rng)] if rng.random() < 0.5 else []
    return (steps, "errored", "error", None, None, error), None


GENERATORS: dict[str, Callable[[random.Random], tuple[Case, str | None]]] = {
    "auth": _auth,
    "rate_limit": _rate_limit,
    "server_error": _server_error,
    "service_timeout": _service_timeout,
    "unreachable": _unreachable,
    "docs_page_missing": _docs_page_missing,
    "endpoint_missing": _endpoint_missing,
    "invalid_request": _invalid_request,
    "dependency_missing": _dependency_missing,
    "hung_command": _hung_command,
    "tool_error:TypeError": _tool_error,
    "doc_loop": _doc_loop,
    "step_limit": _step_limit,
    "gave_up": _gave_up,
    "wrong_answer": _wrong_answer,
    "runner_error": _runner_error,
}


def _transcript(
    steps: Sequence[Step], final: str | None, pending: tuple[str, dict[str, Any]] | None
) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a developer trying the product."},
        {"role": "user", "content": "Do the task."},
    ]
    for index, (text, tool, args, result, error) in enumerate(steps):
        call_id = f"c{index}"
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": text},
                    {"type": "tool_call", "id": call_id, "name": tool, "input": args},
                ],
            }
        )
        messages.append(
            {
                "role": "tool",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_call_id": call_id,
                        "content": result,
                        "is_error": error,
                    }
                ],
            }
        )
    if pending is not None:
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_call", "id": "pending", "name": pending[0], "input": pending[1]}
                ],
            }
        )
    if final is not None:
        messages.append({"role": "assistant", "content": final})
    return {"version": 1, "messages": messages}


def corpus(seed: int = 12, per_cause: int = 14) -> list[Labelled]:
    """`per_cause` runs of every cause in `GENERATORS`, shuffled; the same seed gives the same
    corpus."""
    rng = random.Random(seed)
    labelled = []
    for cause, generate in GENERATORS.items():
        for n in range(per_cause):
            (steps, status, reason, final, pending, error), tricky = generate(rng)
            run_id = f"run_{cause.partition(':')[0]}_{n:02d}"
            labelled.append(
                Labelled(
                    FailingRun(
                        run_id=run_id,
                        task_id=f"task_{rng.randrange(len(TASKS))}",
                        environment_id=f"env_{rng.randrange(len(ENVS))}",
                        status=status,
                        termination_reason=reason,
                        error=error,
                        transcript=transcript_from_object(_transcript(steps, final, pending)),
                        task_name=rng.choice(TASKS),
                        environment_name=rng.choice(ENVS),
                    ),
                    cause,
                    tricky,
                )
            )
    rng.shuffle(labelled)
    return labelled


def purity_and_completeness(
    clusters: Iterable[Sequence[str]], labels: dict[str, str]
) -> tuple[float, float]:
    """Purity: the share of runs whose cluster's commonest true cause is theirs. Completeness:
    the share of runs in their cause's largest cluster. Both over all labelled runs; 1.0 and
    1.0 is one cluster per cause."""
    clusters = [list(c) for c in clusters]
    total = len(labels)
    purity = sum(max(Counter(labels[r] for r in c).values()) for c in clusters if c) / total
    largest: dict[str, int] = defaultdict(int)
    for c in clusters:
        for cause, n in Counter(labels[r] for r in c).items():
            largest[cause] = max(largest[cause], n)
    completeness = sum(largest.values()) / total
    return purity, completeness


def main() -> None:
    from domain.clusters import cluster_failures

    labelled = corpus()
    labels = {item.run.run_id: item.cause for item in labelled}
    clusters = cluster_failures([item.run for item in labelled])
    purity, completeness = purity_and_completeness([c.run_ids for c in clusters], labels)
    causes = len(set(labels.values()))
    print(
        f"{len(labelled)} failing runs, {causes} causes, "
        f"{sum(1 for item in labelled if item.adversarial)} adversarial: "
        f"{len(clusters)} clusters, purity {purity:.3f}, completeness {completeness:.3f}"
    )
    for c in clusters:
        mix = Counter(labels[r] for r in c.run_ids).most_common()
        print(f"  {c.size:>3} {c.key:<24} {c.category:<55} {mix}")


if __name__ == "__main__":
    main()
