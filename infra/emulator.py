"""Local AWS emulator for `make dev`, the tests and the benchmark: moto's own server and
backends (pinned in infra/requirements.txt), with four corrections that make its DynamoDB
behave like the real one where this project depends on it.

0. It is served by waitress, which keeps HTTP/1.1 connections alive as AWS endpoints do.
1. Requests are handled one at a time. moto's threaded server interleaves transactions,
   and a failed transaction's rollback would then drop writes another thread committed
   meanwhile. Real DynamoDB never does that, and our identity invariants are tested under
   concurrency.
2. TransactWriteItems snapshots only the items it touches. moto 5.2.5 deep-copies the whole
   table once per transaction *item* to be able to roll back, so a six-item lead copied the
   table six times and its cost grew with the table.
3. DynamoDB model instances are not tracked. moto appends every model instance it ever
   creates to a class-level list for its dashboard (`/moto-api/data.json`), for ever; with
   (2) that was every copied item of every transaction, and memory grew without bound.
   Every other service is still tracked, so `/moto-api/data.json` keeps showing what SES
   and SNS "delivered".
4. TransactWriteItems honours ClientRequestToken as DynamoDB does: a successful transaction
   repeated with the same token within ten minutes succeeds again without being applied
   twice; the same token with different items is an IdempotentParameterMismatchException.

`GET /_emulator/stats` reports the process's resident memory and how many model instances
moto tracks, so tests and the benchmark can check (3).
"""

import argparse
import copy
import json
import logging
import os
import sys
import threading
import time

from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.core.model_instances import model_data
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress import serve

TOKEN_WINDOW_SECONDS = 600


class _Untracked(list):
    """A model's instance list that keeps nothing."""

    def append(self, _instance):
        pass


def stop_tracking(service):
    for model in model_data.get(service, {}).values():
        model.instances_tracked = _Untracked()


def tracked_instances():
    return sum(len(m.instances_tracked) for models in model_data.values() for m in models.values())


def transact_write_items(self, transact_items):
    """moto's TransactWriteItems, rolling back by restoring only the items it touched."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    undo = []  # (table, hash key, range key, item before this transaction or None)
    stream_marks = {}  # table name -> stream length before this transaction
    seen = set()
    errors = []

    def rollback():
        for table, hash_key, range_key, before in reversed(undo):
            if range_key is None:
                if before is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = before
            else:
                bucket = table.items[hash_key]
                if before is None:
                    bucket.pop(range_key, None)
                    if not bucket:
                        table.items.pop(hash_key, None)
                else:
                    bucket[range_key] = before
        for name, mark in stream_marks.items():
            shard = self.tables[name].stream_shard
            if shard is not None:
                del shard.items[mark:]

    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(entry.items()))
        try:
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            table = self.get_table(table_name)
            key_source = op["Item"] if op_type == "Put" else op["Key"]
            key = {table.hash_key_attr: key_source[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = key_source[table.range_key_attr]
            identity = (table_name, json.dumps(key, sort_keys=True))
            if identity in seen:
                raise MultipleTransactionsException()
            seen.add(identity)
            hash_key, range_key = self.get_keys_value(table, key)
            current = table.get_item(hash_key, range_key)
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            condition = op.get("ConditionExpression")
            if condition is not None and not get_filter_expression(condition, names, values).expr(current):
                old = None
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    old = current.to_json()["Attributes"]
                raise ConditionalCheckFailed(item=old)
            if op_type != "ConditionCheck":
                if table_name not in stream_marks:
                    stream_marks[table_name] = len(table.stream_shard.items) if table.stream_shard else 0
                # Update mutates the stored item in place, so keep a copy of just this one.
                undo.append((table, hash_key, range_key, copy.deepcopy(current)))
            if op_type == "Put":
                self.put_item(table_name, op["Item"], condition_expression=condition,
                              expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(table_name, key, condition_expression=condition,
                                 expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Update":
                self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                 condition_expression=condition, expression_attribute_names=names,
                                 expression_attribute_values=values)
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            rollback()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), e.description and json.loads(e.description).get("Item")))
        except Exception as e:  # noqa: BLE001 - reported per item, as moto does
            errors.append((type(e).__name__, str(e), None))
    if any(code is not None for code, _, _ in errors):
        rollback()
        raise TransactionCanceledException(errors)


class IdempotentParameterMismatch(JsonRESTError):
    def __init__(self):
        super().__init__(
            "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
            "ClientRequestToken was used with different request parameters",
        )


_tokens = {}  # token -> (request fingerprint, monotonic time of success)
_original_handler = DynamoHandler.transact_write_items


def transact_write_items_handler(self):
    token = self.body.get("ClientRequestToken")
    if not token:
        return _original_handler(self)
    now = time.monotonic()
    for old in [t for t, (_, at) in _tokens.items() if now - at > TOKEN_WINDOW_SECONDS]:
        del _tokens[old]
    fingerprint = json.dumps(self.body["TransactItems"], sort_keys=True)
    if token in _tokens:
        if _tokens[token][0] != fingerprint:
            raise IdempotentParameterMismatch()
        # Already applied: answer as DynamoDB does, without applying it again.
        return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
    result = _original_handler(self)
    _tokens[token] = (fingerprint, now)
    return result


def patch_moto():
    DynamoDBBackend.transact_write_items = transact_write_items
    DynamoHandler.transact_write_items = transact_write_items_handler
    for service in ("dynamodb", "dynamodbstreams"):
        stop_tracking(service)


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Serialized:
    """WSGI middleware: one request at a time through the wrapped app, plus the stats page."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/_emulator/stats":
            body = json.dumps({"residentBytes": resident_bytes(), "trackedInstances": tracked_instances()})
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body.encode()]
        with self.lock:
            return list(self.app(environ, start_response))


def exit_with_parent(parent_pid):
    """Tests start the emulator themselves; it must not outlive them."""
    while True:
        try:
            os.kill(parent_pid, 0)
        except OSError:
            os._exit(0)
        if os.getppid() != parent_pid:
            os._exit(0)
        time.sleep(0.5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--parent-pid", type=int, help="exit when this process exits")
    args = parser.parse_args()
    logging.getLogger("waitress").setLevel(logging.ERROR)
    if args.parent_pid:
        threading.Thread(target=exit_with_parent, args=(args.parent_pid,), daemon=True).start()
    app = DomainDispatcherApplication(create_backend_app)
    patch_moto()
    print(f"AWS emulator (moto) listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    # waitress keeps connections alive; werkzeug's dev server closes every one, which made
    # each SDK call pay a TCP connect (and a DNS lookup) that Lambda never pays warm.
    serve(Serialized(app), host=args.host, port=args.port, threads=8, connection_limit=1000,
          channel_timeout=300, ident="moto")


if __name__ == "__main__":
    main()
