"""Error messages -> fingerprints, the way error trackers group exceptions.

Two runs that hit the same failure rarely print the same text: keys, request ids, timestamps,
pages, durations and paths differ. `normalize_message` replaces each of those with a
placeholder (`<key>`, `<id>`, `<hex>`, `<uuid>`, `<num>`, `<str>`, `<time>`, `<email>`,
`<ip>`, `<user>`) and keeps what identifies the failure: words, exception names, hosts, fixed
path segments and HTTP statuses. One pass of one regex: the leftmost match wins, so a URL or a
quoted value is handled as a whole and its digits are never seen again as numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Three-digit numbers in this range are kept: in failure text they are almost always HTTP
# statuses, and a status is what separates an auth failure from a missing page.
HTTP_FAILURE_STATUSES = range(400, 600)

# Longest text a fingerprint keeps; longer messages differ only in their tail.
MAX_MESSAGE = 300

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
_UNIT = (
    r"(?:\s?(?:ms|milliseconds?|seconds?|secs?|s|minutes?|mins?|m|hours?|h|bytes?|b|kb|mb|gb"
    r"|k|x|%|tokens?|items?|lines?|rows?|steps?|attempts?|retries|times?|chars?|characters?)\b)?"
)
_REASON_PHRASE = (
    r"(?:Bad Request|Unauthori[sz]ed|Payment Required|Forbidden|Not Found|Method Not Allowed"
    r"|Request Time-?out|Conflict|Gone|Unprocessable|Too Many Requests|Internal Server Error"
    r"|Bad Gateway|Service Unavailable|Gateway Time-?out|Overloaded)"
)

_PATTERN = re.compile(
    "|".join(
        (
            r"(?P<ansi>\x1b\[[0-9;?]*[A-Za-z])",
            r"(?P<url>\b(?:https?|wss?|ftp)://[^\s'\"<>`()\[\]{}\\|]+)",
            r"(?P<email>\b[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)",
            # Timestamps, before their digits count as numbers: ISO 8601, HTTP dates, clocks.
            r"(?P<time>\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?"
            r"(?:Z\b|[+-]\d{2}:?\d{2}\b|\s?UTC\b)?"
            r"|\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s+\d{1,2}\s+" + _MONTH + r"\s+\d{4}"
            r"|\b" + _MONTH + r"\s+\d{1,2}(?:,\s*\d{4})?\b"
            r"|\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?:\s?(?:Z|UTC|GMT)\b|[+-]\d{2}:?\d{2}\b)?"
            r"|\b\d{1,2}/\d{1,2}/\d{2,4}\b)",
            r"(?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)",
            # Secrets: JWTs, bearer tokens, provider-style API keys, key=value credentials.
            r"(?P<jwt>\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*)",
            r"(?P<bearer>\b(?:Bearer|Basic|Token)\s+)[\w.~+/=-]{8,}",
            r"(?P<apikey>\b(?:sk|pk|rk)[-_](?:(?:live|test|prod|ant|proj)[-_])?[A-Za-z0-9_-]{6,}"
            r"|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{20,}|\bxox[abpr]-[\w-]{10,})",
            r"(?P<secretkv>\b(?:api[_-]?key|access[_-]?token|token|secret|password|passwd)"
            r"\s*[=:]\s*)(?=[^\s,;'\"&)]*\d)[^\s,;'\"&)]{6,}",
            r"(?P<ip>\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b)",
            r"(?P<hex>\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{7,}\b)",
            # Prefixed ids (req_1a2b, cus_9X, call_3) and long mixed tokens (base64-ish ids).
            r"(?P<id>\b[A-Za-z]{2,12}_(?=[A-Za-z0-9]*\d)[A-Za-z0-9]+\b"
            r"|\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{16,}\b)",
            r"(?P<winpath>\b[A-Za-z]:\\[^\s'\"<>|]*)",
            r"(?P<path>(?<![\w/.:])(?:~|\.{1,2})?(?:/[\w.@%+=,~-]+){2,}/?)",
            r"(?P<quoted>(?<![\w\\])(?:\"[^\"\n]{0,300}\"|'[^'\n]{0,300}'|`[^`\n]{0,300}`)(?!\w))",
            r"(?P<number>(?<![\w.])[-+]?\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?" + _UNIT + r"(?![\w]))",
        )
    )
)

_TRAILING_PUNCTUATION = ".,;:!?"
# A path segment that names a version (v2, v1beta) is part of the route, not a variable.
_VERSION_SEGMENT = re.compile(r"v\d+(?:\.\d+)*(?:alpha|beta|rc)?\d*", re.IGNORECASE)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEXISH = re.compile(r"(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{7,}")
_PREFIXED_ID = re.compile(r"[A-Za-z][A-Za-z0-9]*[_-](?=[A-Za-z0-9]*\d)[A-Za-z0-9]+")
_EXTENSION = re.compile(r"(.+?)(\.[A-Za-z][A-Za-z0-9]{0,5})$")
_HOME_DIRS = frozenset({"home", "users", "Users"})
# A JSON string value under one of these keys is the message itself: keep it (normalised).
_MESSAGE_KEY_BEFORE = re.compile(
    r"[\"'](?:error|message|msg|detail|title|reason|type|code|error_description)[\"']\s*:\s*$",
    re.IGNORECASE,
)
_NOT_A_STATUS_BEFORE = re.compile(r"(?:port|line|pid|errno)\W{0,2}$")
_JSON_KEY = re.compile(r"[\w.-]{1,40}")
_REPEATED_PLACEHOLDER = re.compile(r"(<\w+>)(?:[\s,;]*\1)+")
_WHITESPACE = re.compile(r"\s+")
_STATUS_IN_FINGERPRINT = re.compile(r"(?<![\w</.-])([45]\d\d)(?![\w>.])")


def normalize_message(text: str) -> str:
    """The fingerprint of a failure message: variable parts replaced, whitespace collapsed.

    >>> normalize_message("401 Unauthorized: bad key sk_test_4f2a9c (request id req_1a2b3c4d)")
    '401 Unauthorized: bad key <key> (request id <id>)'
    """
    replaced = _PATTERN.sub(_replace, text)
    collapsed = _WHITESPACE.sub(" ", _REPEATED_PLACEHOLDER.sub(r"\1", replaced)).strip()
    return collapsed[:MAX_MESSAGE].rstrip()


def http_statuses_in(fingerprints: Iterable[str]) -> tuple[int, ...]:
    """HTTP failure statuses (400–599) in normalised messages, sorted, each once.

    Read from fingerprints, not raw text: there every other number is already `<num>`, so a
    three-digit number left standing is a status, not a duration, port or id."""
    found = {
        int(m.group(1)) for text in fingerprints for m in _STATUS_IN_FINGERPRINT.finditer(text)
    }
    return tuple(sorted(found))


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup
    value = match.group(0)
    if kind == "ansi":
        return ""
    if kind == "url":
        stripped = value.rstrip(_TRAILING_PUNCTUATION)
        return normalize_url(stripped) + value[len(stripped) :]
    if kind in ("bearer", "secretkv"):
        return f"{match.group(kind)}<key>"
    if kind in ("jwt", "apikey"):
        return "<key>"
    if kind == "path":
        return _template_path(value, "/")
    if kind == "winpath":
        return _template_path(value, "\\")
    if kind == "quoted":
        return _replace_quoted(match)
    if kind == "number":
        return _replace_number(match)
    return f"<{kind}>"


def normalize_url(url: str) -> str:
    """scheme://host/path with credentials, query, fragment and variable segments removed.

    >>> normalize_url("https://user:pw@API.acme.com/v2/customers/cus_42/refunds?limit=5#top")
    'https://api.acme.com/v2/customers/<id>/refunds'
    """
    scheme, _, rest = url.partition("://")
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]
    host, slash, path = rest.partition("/")
    # Credentials and ports are not part of which service failed.
    host = host.rpartition("@")[2].split(":")[0].lower()
    if not slash:
        return f"{scheme.lower()}://{host}"
    segments = [_template_segment(segment) for segment in path.split("/")]
    return f"{scheme.lower()}://{host}/" + "/".join(segments)


def url_parts(url: str) -> tuple[str, str]:
    """(host, path) of a raw URL, without credentials, query or fragment: for evidence."""
    rest = url.partition("://")[2]
    rest = re.split(r"[?#]", rest, maxsplit=1)[0].rstrip(_TRAILING_PUNCTUATION)
    host, _, path = rest.partition("/")
    return host.rpartition("@")[2].lower(), "/" + path


def is_variable_segment(segment: str) -> bool:
    """A path segment that differs between runs of one failure: an id, number, hash or key.

    Words (`customers`, `guides`, `refund`) and versions (`v2`) are the route and stay."""
    if not segment or _VERSION_SEGMENT.fullmatch(segment):
        return False
    stem = _EXTENSION.sub(r"\1", segment)
    return bool(
        stem.isdigit()
        or _UUID.fullmatch(stem)
        or _HEXISH.fullmatch(stem)
        or _PREFIXED_ID.fullmatch(stem)
        or "@" in stem
        or len(stem) > 32
        or (len(stem) >= 4 and sum(c.isdigit() for c in stem) >= 2)
    )


def _template_segment(segment: str) -> str:
    if not is_variable_segment(segment):
        return segment
    extension = _EXTENSION.match(segment)
    # Keep a file's extension: `<id>.json` still says what kind of file it was.
    return f"<id>{extension.group(2)}" if extension and not segment.isdigit() else "<id>"


def _template_path(path: str, separator: str) -> str:
    segments = path.split(separator)
    out: list[str] = []
    for index, segment in enumerate(segments):
        after_home = index > 0 and segments[index - 1] in _HOME_DIRS
        # Temporary directories (tmpab12cd, pytest-3) are per-run names.
        temporary = segment.startswith("tmp") and len(segment) > 3
        out.append("<user>" if after_home else "<id>" if temporary else _template_segment(segment))
    return separator.join(out)


def _replace_quoted(match: re.Match[str]) -> str:
    value = match.group(0)
    inner = value[1:-1]
    text = match.string
    before = text[: match.start()].rstrip()[-1:]
    after = text[match.end() : match.end() + 8].lstrip()[:1]
    if before in ("{", ",") and after == ":" and _JSON_KEY.fullmatch(inner):
        return value  # a JSON key: structure, not data
    if _MESSAGE_KEY_BEFORE.search(text[max(0, match.start() - 40) : match.start()]):
        return f"{value[0]}{normalize_message(inner)}{value[-1]}"
    url = _PATTERN.fullmatch(inner)
    if url is not None and url.lastgroup == "url":
        return normalize_url(inner.rstrip(_TRAILING_PUNCTUATION))
    return "<str>"


def _replace_number(match: re.Match[str]) -> str:
    value = match.group(0)
    digits = value.lstrip("+-")
    before = match.string[max(0, match.start() - 6) : match.start()].lower()
    is_status = digits.isdigit() and len(digits) == 3 and int(digits) in HTTP_FAILURE_STATUSES
    # …unless it is plainly something else: a port, a line, a process id.
    if is_status and not _NOT_A_STATUS_BEFORE.search(before):
        return value
    unit = re.sub(r"^[-+]?[\d.,eE+-]*\d", "", value)
    return "<num>" + unit
