"""A thin typed layer over the DynamoDB client: conditional puts, transactions, queries, cursors.

Raises :class:`chalicelib.errors.Conflict` (or the given exception) when a condition fails,
never a raw ``ClientError``. A transaction cancelled for another reason (throttling, a conflicting
transaction) is retried a few times, then raises UpstreamError (a 503, or an SQS retry): it is
never mistaken for "already done".
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.errors import Conflict, UpstreamError, ValidationFailed
from chalicelib.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

Item = dict[str, Any]

# A cancelled transaction is a failed condition only when one of its reasons says so; these others
# mean nothing was written and the same request may succeed when tried again.
CONDITION_FAILED = "ConditionalCheckFailed"
RETRYABLE_CANCELLATIONS = frozenset(
    {"None", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)
TRANSACTION_RETRIES = 3
# DynamoDB Query calls one listing page may make (each reads at most its Limit and 1 MB). A filter that matches
# little would otherwise read on until the page is full: the page comes back short with a cursor instead.
PAGE_READ_LIMIT = 4
# Builds the exception raised when a condition fails, from the transaction's cancellation reasons.
ErrorFactory = Callable[[list[str]], Exception]


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, set):
        return {_from_dynamo(v) for v in value}
    return value


def _attribute(value: Any) -> dict[str, Any]:
    """``TypeSerializer().serialize(_to_dynamo(value))``, with the common types (str, bool, dict, list) written
    directly: boto3's serializer tries every type in turn for each value (a 10,000-row import built its rows'
    items in 2.6 s with it, 1.4 s now)."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if kind is dict:
        return {"M": {k: _attribute(v) for k, v in value.items() if v is not None}}
    if kind is list:
        return {"L": [_attribute(v) for v in value]}
    return dict(_serializer.serialize(_to_dynamo(value)))


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _attribute(v) for k, v in item.items() if v is not None}


def deserialize(item: Mapping[str, Any]) -> Item:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in item.items()}


def encode_cursor(last_key: Mapping[str, Any] | None) -> str | None:
    if not last_key:
        return None
    raw = json.dumps(deserialize(last_key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, expected_pk: str | None = None, pk_name: str = "PK") -> dict[str, Any] | None:
    """Decode an opaque cursor; one that was not made for this listing is a 400, not a leak."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError
    except ValueError as exc:
        raise ValidationFailed("cursor is not valid", fields={"cursor": "not a cursor from this API"}) from exc
    if expected_pk is not None and data.get(pk_name) != expected_pk:
        raise ValidationFailed("cursor is not valid", fields={"cursor": "belongs to another listing"})
    # Exactly the key attributes DynamoDB expects back as ExclusiveStartKey, nothing else.
    index = pk_name[: -len("PK")]
    expected = {"PK", "SK"} | ({f"{index}PK", f"{index}SK"} if index else set())
    if set(data) != expected:
        raise ValidationFailed("cursor is not valid", fields={"cursor": "not a cursor from this API"})
    return serialize(data)


class Cancelled(Exception):
    """A transaction whose conditions did not all hold: ``reasons`` has one code per action, ``items``
    the item each action found where it asked for it (``ReturnValuesOnConditionCheckFailure``), else None."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons
        self.items: list[Item | None] = [None] * len(reasons)


class Table:
    def __init__(self, name: str, client: DynamoDBClient) -> None:
        self.name = name
        self.client = client

    # --- single items -------------------------------------------------------------------------
    def get(self, key: Mapping[str, str], *, consistent: bool = False) -> Item | None:
        response = self._call("GetItem", Key=serialize(key), ConsistentRead=consistent)
        raw = response.get("Item")
        return deserialize(raw) if raw else None

    def put_new(self, item: Mapping[str, Any], conflict: ErrorFactory | None = None) -> None:
        """Create an item that must not exist yet."""
        self._call(
            "PutItem",
            Item=serialize(item),
            ConditionExpression="attribute_not_exists(PK)",
            _conflict=conflict,
        )

    def put(self, item: Mapping[str, Any]) -> None:
        self._call("PutItem", Item=serialize(item))

    def delete(self, key: Mapping[str, str]) -> None:
        self._call("DeleteItem", Key=serialize(key))

    def take(self, key: Mapping[str, str]) -> Item | None:
        """Delete the item and return what it held, or None when it was not there: of two concurrent takes of one
        item, one gets it."""
        old = self._call("DeleteItem", Key=serialize(key), ReturnValues="ALL_OLD").get("Attributes")
        return deserialize(old) if old else None

    def delete_if(
        self, key: Mapping[str, str], condition: str, names: Mapping[str, str], values: Mapping[str, Any]
    ) -> None:
        """Delete under a condition; raises Conflict when it does not hold (or the item is gone)."""
        self._call(
            "DeleteItem",
            Key=serialize(key),
            ConditionExpression=condition,
            ExpressionAttributeNames=dict(names),
            ExpressionAttributeValues=serialize(values),
        )

    def update(
        self,
        key: Mapping[str, str],
        changes: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        add: Mapping[str, int] | None = None,
        conflict: ErrorFactory | None = None,
    ) -> Item:
        """SET ``changes`` (a ``None`` value REMOVEs the attribute, ``add`` ADDs numbers) under an
        optional condition whose placeholders come in ``names`` / ``values``; returns the new item."""
        params = self.update_params(key, changes, condition=condition, names=names, values=values, add=add)
        response = self._call("UpdateItem", ReturnValues="ALL_NEW", _conflict=conflict, **params)
        return deserialize(response["Attributes"])

    def update_expression(
        self,
        key: Mapping[str, str],
        expression: str,
        *,
        names: Mapping[str, str],
        values: Mapping[str, Any],
        condition: str | None = None,
    ) -> None:
        """An UpdateItem with a hand-written expression (nested paths, which ``update`` does not build)."""
        params: dict[str, Any] = {
            "Key": serialize(key),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
        }
        if values:
            params["ExpressionAttributeValues"] = serialize(values)
        if condition:
            params["ConditionExpression"] = condition
        self._call("UpdateItem", **params)

    @staticmethod
    def update_params(
        key: Mapping[str, str],
        changes: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        add: Mapping[str, int] | None = None,
    ) -> dict[str, Any]:
        expr_names: dict[str, str] = dict(names or {})
        expr_values: dict[str, Any] = dict(values or {})
        sets, removes, adds = [], [], []
        for i, (field, value) in enumerate(changes.items()):
            expr_names[f"#u{i}"] = field
            if value is None:
                removes.append(f"#u{i}")
            else:
                expr_values[f":u{i}"] = value
                sets.append(f"#u{i} = :u{i}")
        for k, (field, amount) in enumerate((add or {}).items()):
            expr_names[f"#a{k}"] = field
            expr_values[f":a{k}"] = amount
            adds.append(f"#a{k} :a{k}")
        parts = []
        if sets:
            parts.append("SET " + ", ".join(sets))
        if removes:
            parts.append("REMOVE " + ", ".join(removes))
        if adds:
            parts.append("ADD " + ", ".join(adds))
        params: dict[str, Any] = {"Key": serialize(key), "UpdateExpression": " ".join(parts)}
        if condition:
            params["ConditionExpression"] = condition
        if expr_names:
            params["ExpressionAttributeNames"] = expr_names
        if expr_values:
            params["ExpressionAttributeValues"] = serialize(expr_values)
        return params

    # --- many items ---------------------------------------------------------------------------
    def query(
        self,
        pk_value: str,
        *,
        index: str | None = None,
        sk_prefix: str | None = None,
        sk_between: tuple[str, str] | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        cursor: Mapping[str, Any] | None = None,
        filters: Mapping[str, Any] | None = None,
        contains: Mapping[str, str] | None = None,
        consistent: bool = False,
        max_reads: int | None = None,
    ) -> tuple[list[Item], dict[str, Any] | None]:
        """``filters`` are equalities and ``contains`` substrings, both applied after the key
        condition (a FilterExpression); ``sk_between`` bounds the sort key (inclusive). With a
        filter, reading goes on until ``limit`` items matched, or ``max_reads`` Query calls were
        made: then fewer items come back, with the key to continue from."""
        pk_name = f"{index}PK" if index else "PK"
        sk_name = f"{index}SK" if index else "SK"
        names = {"#pk": pk_name}
        values: dict[str, Any] = {":pk": pk_value}
        condition = "#pk = :pk"
        if sk_prefix:
            names["#sk"] = sk_name
            values[":sk"] = sk_prefix
            condition += " AND begins_with(#sk, :sk)"
        elif sk_between:
            names["#sk"] = sk_name
            values[":lo"], values[":hi"] = sk_between
            condition += " AND #sk BETWEEN :lo AND :hi"
        params: dict[str, Any] = {
            "KeyConditionExpression": condition,
            "ScanIndexForward": not newest_first,
        }
        clauses = []
        for i, (field, value) in enumerate((filters or {}).items()):
            names[f"#f{i}"] = field
            values[f":f{i}"] = value
            clauses.append(f"#f{i} = :f{i}")
        for i, (field, part) in enumerate((contains or {}).items()):
            names[f"#c{i}"] = field
            values[f":c{i}"] = part
            clauses.append(f"contains(#c{i}, :c{i})")
        filtered = bool(clauses)
        if filtered:
            params["FilterExpression"] = " AND ".join(clauses)
        params["ExpressionAttributeNames"] = names
        params["ExpressionAttributeValues"] = serialize(values)
        if index:
            params["IndexName"] = index
        elif consistent:
            params["ConsistentRead"] = True
        if cursor:
            params["ExclusiveStartKey"] = dict(cursor)
        items: list[Item] = []
        last: dict[str, Any] | None = None
        # With a filter a page can come back short; keep reading until the page is full, or the reads run out.
        reads = 0
        while True:
            if limit:
                params["Limit"] = limit if filtered else limit - len(items)
            response = self._call("Query", **params)
            reads += 1
            items.extend(deserialize(i) for i in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last or (limit and len(items) >= limit) or (max_reads and reads >= max_reads):
                break
            params["ExclusiveStartKey"] = last
        if limit and len(items) > limit:
            items = items[:limit]
            last = serialize(self._key_of(items[-1], index))
        return items, last

    def page(
        self,
        pk_value: str,
        cursor: str | None,
        limit: int,
        *,
        index: str | None = None,
        sk_prefix: str | None = None,
        sk_between: tuple[str, str] | None = None,
        newest_first: bool = False,
        filters: Mapping[str, Any] | None = None,
        contains: Mapping[str, str] | None = None,
    ) -> tuple[list[Item], str | None]:
        """One page of a listing with its opaque cursor in and out (a cursor made for another
        partition or listing is a 400): what every paginated API route reads through. At most
        :data:`PAGE_READ_LIMIT` Query calls: a filtered page may come back short, even empty, with
        a cursor; only a page without a cursor is the last."""
        start = decode_cursor(cursor, expected_pk=pk_value, pk_name=f"{index}PK" if index else "PK")
        if start is not None and sk_prefix and not index and not str(start["SK"].get("S", "")).startswith(sk_prefix):
            raise ValidationFailed("cursor is not valid", fields={"cursor": "belongs to another listing"})
        items, last = self.query(
            pk_value,
            index=index,
            sk_prefix=sk_prefix,
            sk_between=sk_between,
            newest_first=newest_first,
            limit=limit,
            cursor=start,
            filters=filters,
            contains=contains,
            max_reads=PAGE_READ_LIMIT,
        )
        return items, encode_cursor(last)

    @staticmethod
    def _key_of(item: Mapping[str, Any], index: str | None) -> dict[str, Any]:
        key = {"PK": item["PK"], "SK": item["SK"]}
        if index:
            key[f"{index}PK"] = item[f"{index}PK"]
            key[f"{index}SK"] = item[f"{index}SK"]
        return key

    def batch_get(self, keys: list[Mapping[str, str]], *, consistent: bool = False) -> list[Item]:
        """The items that exist among ``keys`` (any order), in chunks of 100, retrying UnprocessedKeys."""
        found: list[Item] = []
        for start in range(0, len(keys), 100):
            pending: dict[str, Any] = {
                self.name: {"Keys": [serialize(k) for k in keys[start : start + 100]], "ConsistentRead": consistent}
            }
            attempt = 0
            while pending:
                response = self._call("BatchGetItem", RequestItems=pending)
                found.extend(deserialize(i) for i in response.get("Responses", {}).get(self.name, []))
                pending = response.get("UnprocessedKeys") or {}
                attempt = self._backoff(attempt, bool(pending))
        return found

    def batch_put(self, items: list[Mapping[str, Any]]) -> int:
        """Unconditional BatchWriteItem in chunks of 25, retrying UnprocessedItems with backoff.

        Returns the number of write requests sent (for benchmarks).
        """
        return self.batch_put_serialized([serialize(i) for i in items])

    def batch_put_serialized(self, items: list[dict[str, Any]]) -> int:
        """:meth:`batch_put` for items already in DynamoDB's wire format (e.g. taken from ``t_put`` actions)."""
        requests = 0
        for start in range(0, len(items), 25):
            pending: dict[str, Any] = {self.name: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]}
            attempt = 0
            while pending:
                requests += 1
                response = self._call("BatchWriteItem", RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                attempt = self._backoff(attempt, bool(pending))
        return requests

    def transact(self, actions: list[dict[str, Any]], conflict: ErrorFactory | None = None) -> None:
        """TransactWriteItems; a cancelled transaction becomes ``conflict(reasons)`` or Conflict."""
        self._call("TransactWriteItems", TransactItems=actions, _conflict=conflict)

    def transact_or_reasons(self, actions: list[dict[str, Any]]) -> list[str] | None:
        """TransactWriteItems; None when it went through, else the cancellation reason of each action (in
        order, ``CONDITION_FAILED`` where a condition did not hold), so the caller can tell which one failed."""
        try:
            self._call("TransactWriteItems", TransactItems=actions, _conflict=Cancelled)
        except Cancelled as cancelled:
            return cancelled.reasons
        return None

    def put_new_each(self, items: list[Mapping[str, Any]]) -> list[Item | None]:
        """Create each item that does not exist yet, up to 100 per TransactWriteItems of conditional puts (one
        request where PutItem needs one per item; a transactional write costs DynamoDB twice the capacity).
        Returns, per item in order, None when this call created it, else the item that was already there: every
        answer is that of a condition checked atomically with the write, so concurrent writers of the same key
        cannot both win. A transaction cancelled by existing items is sent again without them. Keys must be
        distinct. Raises UpstreamError when DynamoDB stays busy."""
        found: list[Item | None] = [None] * len(items)
        for start in range(0, len(items), 100):
            group = list(range(start, min(start + 100, len(items))))
            while group:
                actions = [
                    {
                        "Put": {
                            "TableName": self.name,
                            "Item": serialize(items[i]),
                            "ConditionExpression": "attribute_not_exists(PK)",
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    }
                    for i in group
                ]
                try:
                    self._call("TransactWriteItems", TransactItems=actions, _conflict=Cancelled)
                except Cancelled as cancelled:
                    remaining = []
                    for i, reason, existing in zip(group, cancelled.reasons, cancelled.items, strict=True):
                        if reason == CONDITION_FAILED and existing is not None:
                            found[i] = existing
                        else:  # written but rolled back with the others, or failed without an answer: again
                            remaining.append(i)
                    if len(remaining) == len(group):
                        raise UpstreamError("the database is busy, please retry") from cancelled
                    group = remaining
                else:
                    group = []
        return found

    # transaction action builders
    def t_put_new(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.name,
                "Item": serialize(item),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }

    def t_put(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return {"Put": {"TableName": self.name, "Item": serialize(item)}}

    def t_delete(
        self, key: Mapping[str, str], condition: str | None = None, values: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        action: dict[str, Any] = {"TableName": self.name, "Key": serialize(key)}
        if condition:
            action["ConditionExpression"] = condition
            if values:
                action["ExpressionAttributeValues"] = serialize(values)
        return {"Delete": action}

    def t_update(self, key: Mapping[str, str], changes: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        params = self.update_params(key, changes, **kwargs)
        return {"Update": {"TableName": self.name, **params}}

    def t_check(
        self, key: Mapping[str, str], condition: str, values: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        action: dict[str, Any] = {"TableName": self.name, "Key": serialize(key), "ConditionExpression": condition}
        if values:
            action["ExpressionAttributeValues"] = serialize(values)
        return {"ConditionCheck": action}

    # --- plumbing -----------------------------------------------------------------------------
    @staticmethod
    def _backoff(attempt: int, again: bool) -> int:
        if not again:
            return 0
        if attempt >= 8:
            raise UpstreamError("the database is busy, please retry")
        time.sleep(min(0.05 * 2**attempt, 2.0) * random.uniform(0.5, 1.0))
        return attempt + 1

    def _call(self, operation: str, _conflict: ErrorFactory | None = None, **params: Any) -> dict[str, Any]:
        method = {
            "GetItem": self.client.get_item,
            "PutItem": self.client.put_item,
            "DeleteItem": self.client.delete_item,
            "UpdateItem": self.client.update_item,
            "Query": self.client.query,
            "BatchGetItem": self.client.batch_get_item,
            "BatchWriteItem": self.client.batch_write_item,
            "TransactWriteItems": self.client.transact_write_items,
        }[operation]
        if operation not in ("BatchGetItem", "BatchWriteItem", "TransactWriteItems"):
            params["TableName"] = self.name
        attempt = 0
        while True:
            try:
                return method(**params)  # type: ignore[operator]
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                reasons = [r.get("Code") or "None" for r in exc.response.get("CancellationReasons", [])]
                if code == "ConditionalCheckFailedException" or (
                    code == "TransactionCanceledException" and CONDITION_FAILED in reasons
                ):
                    if _conflict is not None:
                        error = _conflict(reasons)
                        if isinstance(error, Cancelled):
                            error.items = [
                                deserialize(r["Item"]) if r.get("Item") else None
                                for r in exc.response.get("CancellationReasons", [])
                            ]
                        raise error from exc
                    raise Conflict("the item was changed or already exists") from exc
                if code == "TransactionCanceledException" and reasons and set(reasons) <= RETRYABLE_CANCELLATIONS:
                    # Throttled, or another transaction touched the same item: nothing was written.
                    if attempt < TRANSACTION_RETRIES:
                        attempt = self._backoff(attempt, True)
                        continue
                    logger.warning("DynamoDB transaction kept being cancelled", extra={"reasons": reasons})
                    raise UpstreamError("the database is busy, please retry") from exc
                logger.exception(
                    "DynamoDB call failed", extra={"operation": operation, "error_code": code, "reasons": reasons}
                )
                raise UpstreamError("the database is unavailable, please retry") from exc
