"""Parsing JSON that came from outside (request bodies, partner webhooks), refusing what no sender needs.

Every model the API takes is a few levels deep. A body nested thousands of levels deep makes ``json.loads`` raise
RecursionError (a 500 on every JSON route), and one nested a few hundred levels deep parses but can exhaust the
stack later (validation, logging, serialisation): both are the sender's fault, a 400 naming ``body``.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.errors import ValidationFailed

MAX_DEPTH = 32


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def loads(raw: bytes | str, what: str = "the body") -> Any:
    """The parsed JSON. Raises ValidationFailed (field ``body``) when it is not JSON or nests too deeply."""
    try:
        data = json.loads(raw)
    except RecursionError as exc:
        raise ValidationFailed(
            f"{what} is nested too deeply", fields={"body": f"nested deeper than {MAX_DEPTH} levels"}
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"{what} is not valid JSON", fields={"body": "not valid JSON"}) from exc
    if depth_exceeds(data, MAX_DEPTH):
        raise ValidationFailed(
            f"{what} is nested too deeply", fields={"body": f"nested deeper than {MAX_DEPTH} levels"}
        )
    return data
