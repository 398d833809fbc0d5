"""The embedded AWS: moto's server in a thread, fit for a stack that runs all day under load.

moto 5.2.5 is built for tests that last seconds. Six of its habits break a long-running,
multi-threaded stack; :func:`install` corrects them once per process:

- **Every model instance ever created is kept.** ``BaseModel.__new__`` appends each instance to its
  class's ``instances_tracked`` list (only for the ``/moto-api`` dashboard) and nothing ever removes
  it. DynamoDB deep-copies items on every Query and TransactWriteItems, so each copy lived for the
  rest of the process: measured, a 3,000-row import then 20 invitations took the stack from 230 MB
  to 4 GB and rising (bench/stack_load.py). Tracked instances are now held weakly: the dashboard and
  ``/moto-api/data.json`` (the dev outbox reads it) still list every instance that is alive.
- **TransactWriteItems deep-copies the whole table once per action** to be able to roll back: a
  create on a table of 40,000 items copied 160,000 items. It now keeps an undo record of the items
  the transaction touches, and restores only those (and checks each action's condition once, not twice).
- **Every Query sorts the whole table** by primary key before filtering: a query now reads the
  partition it names, and only the range of it that a ``begins_with`` or ``BETWEEN`` sort key condition
  names (an index query skips the presort and checks only the items with its key's values).
- **Answers are serialized value by value** through botocore's shape model: an item read's answer,
  already DynamoDB's JSON, is now dumped directly (a page of 200 items: 0.65 s, under the lock).
- **Not thread-safe.** Backends are plain dicts and lists; a request iterating a table while another
  writes it fails with "dictionary changed size during iteration" and the app answers 5xx. One lock
  serialises request handling (:class:`LockedApp`); an SQS long poll releases it while it waits.
- **A task token answered early is lost.** A ``.waitForTaskToken`` step drops an answer that comes before it starts
  waiting, and its retries reuse the first attempt's token (:func:`task_tokens_per_attempt`).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class BackendLock:
    """A non-reentrant lock that knows its owner, so a waiting request can step aside."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None

    def __enter__(self) -> BackendLock:
        self._lock.acquire()
        self._owner = threading.get_ident()
        return self

    def __exit__(self, *_: object) -> None:
        self._owner = None
        self._lock.release()

    def held(self) -> bool:
        return self._owner == threading.get_ident()

    @contextmanager
    def released(self) -> Iterator[None]:
        """Let other requests run while this thread waits (a no-op where the lock is not held)."""
        if not self.held():
            yield
            return
        self.__exit__()
        try:
            yield
        finally:
            self.__enter__()


BACKENDS = BackendLock()

# Requests that leave the data as it was: an idle stack (pollers long-polling) writes no snapshot.
READS = frozenset(
    {
        "AmazonSQS.ReceiveMessage",
        "AmazonSQS.GetQueueAttributes",
        "AmazonSQS.GetQueueUrl",
        "DynamoDB_20120810.GetItem",
        "DynamoDB_20120810.BatchGetItem",
        "DynamoDB_20120810.Query",
        "DynamoDB_20120810.Scan",
        "DynamoDB_20120810.DescribeTable",
    }
)
_writes = 0


def writes() -> int:
    """How many requests that may have changed data the embedded AWS has served (read it under the lock)."""
    return _writes


class LockedApp:
    """moto's WSGI app, one request at a time; the response body is built under the lock too."""

    def __init__(self, app: WsgiApp, lock: BackendLock = BACKENDS) -> None:
        self.app = app
        self.lock = lock

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        global _writes
        with self.lock:
            if environ.get("HTTP_X_AMZ_TARGET") not in READS:
                _writes += 1
            result = self.app(environ, start_response)
            try:
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


class WeakInstances:
    """Drop-in for a model class's ``instances_tracked`` list that does not keep instances alive."""

    def __init__(self, instances: Iterable[Any] = ()) -> None:
        self._refs: list[weakref.ref[Any]] = []
        self._appended = 0
        for instance in instances:
            self.append(instance)

    def append(self, instance: Any) -> None:
        self._refs.append(weakref.ref(instance))
        self._appended += 1
        if self._appended >= max(1024, len(self._refs)):  # prune now and then: amortised O(1)
            self._refs = [ref for ref in self._refs if ref() is not None]
            self._appended = 0

    def __iter__(self) -> Iterator[Any]:
        for ref in list(self._refs):
            instance = ref()
            if instance is not None:
                yield instance

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _track_weakly() -> None:
    from moto.core.common_models import BaseModel
    from moto.dynamodb.models.dynamo_type import Item

    def tracked_new(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
        instance = super(BaseModel, cls).__new__(cls)
        if issubclass(cls, Item):
            # Table rows: the dashboard shows the tables; listing 40,000 rows would stall data.json.
            return instance
        tracked = cls.__dict__.get("instances_tracked")
        if not isinstance(tracked, WeakInstances):  # a class moto defined later, or moto's reset
            tracked = WeakInstances(tracked or ())
            cls.instances_tracked = tracked
        tracked.append(instance)
        return instance

    BaseModel.__new__ = tracked_new  # type: ignore[method-assign]


def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.5's ``DynamoDBBackend.transact_write_items`` with an item-level undo record in place of
    a deep copy of every table involved. Same checks, same errors, same order."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    undo: list[tuple[Any, Any, Any, Any]] = []  # (table, hash value, range value, item before or None)

    def remember(table_name: str, key: dict[str, Any], current: Any) -> None:
        table = backend.get_table(table_name)
        hash_value, range_value = backend.get_keys_value(table, key)
        undo.append((table, hash_value, range_value, copy.deepcopy(current)))

    def rollback() -> None:
        for table, hash_value, range_value, before in reversed(undo):
            if range_value is not None:
                if before is None:
                    table.items[hash_value].pop(range_value, None)
                else:
                    table.items[hash_value][range_value] = before
            elif before is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = before

    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    # Each distinct condition parsed once per transaction (an import's 100 guards share one).
    parsed: dict[str, Any] = {}

    def condition(expression: str, names: Any, values: Any) -> Any:
        key = json.dumps([expression, names, values], sort_keys=True, default=repr)
        if key not in parsed:
            parsed[key] = get_filter_expression(expression, names, values)
        return parsed[key]

    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(item) > 1:
            rollback()
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                attrs = op["Item"]
                table = backend.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            check_unicity(table_name, key)
            current = backend.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = condition(condition_expression, names, values)
                if not condition_op.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            if op_type != "ConditionCheck":
                remember(table_name, key, current)
            # The condition held just above, on the same item, under the same lock: moto's write would parse
            # and check it a second time.
            if op_type == "Put":
                backend.put_item(
                    table_name, op["Item"], expression_attribute_names=names, expression_attribute_values=values
                )
            elif op_type == "Delete":
                backend.delete_item(
                    table_name, key, expression_attribute_names=names, expression_attribute_values=values
                )
            elif op_type == "Update":
                backend.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            rollback()
            raise
        except ConditionalCheckFailed as exc:
            errors.append(("ConditionalCheckFailed", str(exc.message), original_item))
        except Exception as exc:  # moto reports any other failure as a cancellation reason
            errors.append((type(exc).__name__, str(exc), original_item))
    if any(code is not None for code, _, _ in errors):
        rollback()
        raise TransactionCanceledException(errors)


def _undo_log_transactions() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign,assignment]


def _queries_read_what_they_need() -> None:
    """moto's Query sorts *every* item of the table by primary key before it filters (O(n log n) per
    request, seconds on a table of 50,000 items, all of it under the request lock). A query on the
    table itself now looks at its partition only. An index query skips the presort (its results are
    sorted by the full index and table key afterwards, so the order is the same), and moto's check of
    every item against the index's key conditions (0.6-1 s on 60,000 items under load, measured with
    bench/stack_load.py: the slowest API answers waited for it) now runs on the items a plain pass over
    the table finds with the key attributes' values; moto still checks those as before. A table query
    with ``begins_with`` or ``BETWEEN`` on the sort key reads only the items a plain string comparison
    puts in that range, as DynamoDB reads a key range of a partition kept sorted: moto sorted and checked
    the whole partition (a lender's staff list, read once per import chunk, took 0.3 s under the
    20,000 invitations and guards of a 10,000-row import in the same partition)."""
    import inspect

    from moto.dynamodb.models.table import Table

    query = Table.query
    signature = inspect.signature(query)

    def unsorted_items(table: Any) -> list[Any]:
        if table.range_key_attr:
            return [item for partition in table.items.values() for item in partition.values()]
        return list(table.items.values())

    def index_candidates(table: Any, conditions: list[tuple[str, Any]]) -> list[Any]:
        """The items whose attributes hold the values of every index key condition (a superset of moto's
        matches: moto compares the same type and value, and refuses more)."""
        items = unsorted_items(table)
        for name, expected in conditions:
            kind, value = expected.type, expected.value
            items = [
                item
                for item in items
                if (found := item.attrs.get(name)) is not None and found.value == value and found.type == kind
            ]
        return items

    def in_range(partition: dict[Any, Any], comparison: str | None, bounds: list[Any]) -> dict[Any, Any]:
        """The partition's items whose string sort key may meet a ``begins_with`` or ``BETWEEN`` key condition
        (a superset: moto still checks each one); the whole partition for any other condition."""
        comparison = (comparison or "").upper()
        if comparison not in ("BEGINS_WITH", "BETWEEN") or any(b.type != "S" for b in bounds):
            return partition
        if comparison == "BEGINS_WITH":
            prefix = bounds[0].value
            return {k: i for k, i in partition.items() if k.type == "S" and k.value.startswith(prefix)}
        low, high = bounds[0].value, bounds[1].value
        return {k: i for k, i in partition.items() if k.type == "S" and low <= k.value <= high}

    def fast_query(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        hash_key, index_name = bound.arguments.get("hash_key"), bound.arguments.get("index_name")
        conditions = bound.arguments.get("hash_key_conditions") or []
        view = copy.copy(self)  # the same table, seen through a narrower ``items``
        if index_name is None and hash_key is not None:
            partition = self.items.get(hash_key)
            if partition is not None and self.range_key_attr:
                partition = in_range(
                    partition, bound.arguments.get("range_comparison"), bound.arguments.get("range_objs") or []
                )
            view.items = {} if partition is None else {hash_key: partition}
        elif index_name is not None and conditions:
            view.all_items = lambda: index_candidates(self, conditions)
        else:
            view.all_items = lambda: unsorted_items(self)
        return query(view, *args, **kwargs)

    Table.query = fast_query  # type: ignore[method-assign]


# Operations whose answers are attribute maps (and counts, keys): written as JSON directly.
ITEM_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan"})


def _as_json_binary(value: Any) -> str:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(type(value).__name__)  # not an attribute map after all: moto serializes it


def _item_reads_written_directly() -> None:
    """moto writes every answer by walking botocore's shape model for each value: a Query page of 200
    invitations took 0.65 s to serialize (the query itself 0.1 s), all of it under the request lock, so
    a console listing held up every other request (bench/stack_load.py). An item read's answer is
    already DynamoDB's JSON (moto's ``dynamo_to_dict``): it is now dumped as it is, binary values in
    base64 as moto writes them; any other value (or operation) is left to moto's serializer."""
    from moto.dynamodb.responses import DynamoResult

    execute = DynamoResult.execute_result
    if getattr(execute, "moto_execute_result", None) is not None:
        return

    def execute_result(self: Any, context: Any) -> Any:
        result = self.result
        if context.operation_model.name in ITEM_READS and isinstance(result, dict):
            try:
                body = json.dumps({k: v for k, v in result.items() if v is not None}, default=_as_json_binary)
            except TypeError:
                pass
            else:
                return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return execute(self, context)

    execute_result.moto_execute_result = execute  # type: ignore[attr-defined]
    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]


def _long_polls_step_aside() -> None:
    """An SQS ReceiveMessage that waits for messages lets other requests (the SendMessage it awaits) run."""
    from moto.sqs.models import Queue

    wait = Queue.wait_for_messages

    def wait_for_messages(self: Any, timeout: int) -> None:
        with BACKENDS.released():
            wait(self, timeout)

    Queue.wait_for_messages = wait_for_messages  # type: ignore[method-assign]


def ses_domains_verify_at_once() -> None:
    """SES v2 CreateEmailIdentity for a domain gives Easy DKIM's three tokens and, locally, is verified at once: there
    is no DNS to publish the records in (real SES answers PENDING until it sees them). moto gives no tokens and never
    verifies. Idempotent."""
    from moto.sesv2.models import SESV2Backend

    create = SESV2Backend.create_email_identity
    if getattr(create, "verifies_at_once", False):
        return

    def create_email_identity(self: Any, email_identity: str, *args: Any, **kwargs: Any) -> Any:
        identity = create(self, email_identity, *args, **kwargs)
        if identity.identity_type == "DOMAIN":
            tokens = [hashlib.sha256(f"{email_identity}#{i}".encode()).hexdigest()[:32] for i in range(3)]
            identity.dkim_attributes.update({"SigningEnabled": True, "Status": "SUCCESS", "Tokens": tokens})
            identity.verified_for_sending_status = True
        return identity

    create_email_identity.verifies_at_once = True  # type: ignore[attr-defined]
    SESV2Backend.create_email_identity = create_email_identity  # type: ignore[method-assign]


def task_tokens_per_attempt() -> None:
    """moto 5.2.5's Step Functions, for a ``.waitForTaskToken`` task with a heartbeat, sends the task's message and
    only then sets up the wait for its answer: a SendTaskSuccess/Failure that arrives in between (the worker is quick,
    or the execution's thread is slow on a loaded machine) was dropped, and the step sat until its heartbeat timed out
    (the waterfall then moved on to the next provider). And every Retry attempt reused the first attempt's token and
    answer. Now each attempt gets its own token, as in Step Functions, and the wait first looks for an answer that
    came early. Idempotent; called by :func:`install` and wherever the state machine is created to run locally."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )

    execute = StateTaskServiceCallback._eval_execution
    if getattr(execute, "token_per_attempt", False):
        return
    wait = StateTaskServiceCallback._wait_for_task_token_heartbeat

    def eval_execution(self: Any, env: Any) -> None:
        context = env.states.context_object
        if (
            self._is_integration_pattern()
            and ResourceCondition.WaitForTaskToken in self._supported_integration_patterns
            and context.context_object_data.get("State", {}).get("RetryCount", 0) > 0
        ):
            env.callback_pool_manager.add(context.update_task_token())
        execute(self, env)

    def wait_for_task_token_heartbeat(self: Any, env: Any, callback_endpoint: Any, heartbeat_endpoint: Any) -> Any:
        early = callback_endpoint.get_outcome()
        if early is not None:
            return early
        return wait(self, env, callback_endpoint, heartbeat_endpoint)

    eval_execution.token_per_attempt = True  # type: ignore[attr-defined]
    StateTaskServiceCallback._eval_execution = eval_execution  # type: ignore[method-assign]
    StateTaskServiceCallback._wait_for_task_token_heartbeat = wait_for_task_token_heartbeat  # type: ignore[method-assign]


_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Apply the corrections above to moto in this process (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        _track_weakly()
        _undo_log_transactions()
        _queries_read_what_they_need()
        _item_reads_written_directly()
        _long_polls_step_aside()
        ses_domains_verify_at_once()
        task_tokens_per_attempt()
        _installed = True


class EmbeddedAws:
    """moto's server (what ``ThreadedMotoServer`` runs) behind :class:`LockedApp`, in a daemon thread."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        install()
        app = LockedApp(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-aws", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
