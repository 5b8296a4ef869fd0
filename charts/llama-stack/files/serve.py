"""`llama stack run`, with credentials masked in every log line the server writes.

uvicorn's access log prints each request's path with its query string, so a client that puts
its key in the URL (`?api_key=...`, `?token=...`) would see it land in the log, valid or not.
This launcher installs a log record factory that masks credential-looking query parameters,
`Authorization` values and JSON `"api_key": "..."`-style fields in every record (uvicorn's and
llama-stack's alike), then runs the same `llama stack run` entry point with the same arguments.
"""

import logging
import re
import sys

MASK = "****"
_CREDENTIAL = r"[\w.-]*(?:key|token|secret|password|passwd|auth|credential|signature|sig)[\w.-]*"
_PATTERNS = (
    # ?api_key=..., &token=..., ;password=...
    (re.compile(r"(?i)([?&;]" + _CREDENTIAL + r"=)[^&;#\s\"']*"), r"\1" + MASK),
    # Authorization: Bearer ..., APIKEY ..., Basic ...
    (re.compile(r"(?i)\b((?:Bearer|APIKEY|Basic|Token)\s+)[^\s\"',}]+"), r"\1" + MASK),
    # "api_key": "...", 'token': '...', api_key=...
    (re.compile(r"(?i)([\"']?" + _CREDENTIAL + r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',}&]+"), r"\1" + MASK),
)


def mask(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _masked(value: object) -> object:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_masked(v) for v in value)
    return value


_make_record = logging.getLogRecordFactory()


def _record(*args: object, **kwargs: object) -> logging.LogRecord:
    record = _make_record(*args, **kwargs)
    record.msg = _masked(record.msg)
    if record.args:
        record.args = _masked(record.args)
    return record


if __name__ == "__main__":
    logging.setLogRecordFactory(_record)
    from llama_stack.cli.llama import main

    sys.argv = ["llama", "stack", "run", *sys.argv[1:]]
    sys.exit(main())
