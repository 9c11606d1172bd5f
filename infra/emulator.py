"""Local AWS emulator for `make dev`, the tests and the benchmark: moto's own server and
backends (pinned in infra/requirements.txt), with corrections that make its DynamoDB (and
its streams and SQS) behave like the real ones where this project depends on it.

0. It is served by waitress, which keeps HTTP/1.1 connections alive as AWS endpoints do.
1. Requests are handled one at a time. moto's threaded server interleaves transactions,
   and a failed transaction's rollback would then drop writes another thread committed
   meanwhile. Real DynamoDB never does that, and our identity invariants are tested under
   concurrency. The one exception is an SQS long poll (ReceiveMessage with
   WaitTimeSeconds): moto waits for messages inside the request, and holding the lock
   meanwhile froze every other request for up to 20 s, including the SendMessage that
   should have ended the poll. It waits with the lock released, woken by the queue's own
   condition, and re-takes the lock before looking at the queue again.
2. TransactWriteItems snapshots only the items it touches. moto 5.2.5 deep-copies the whole
   table once per transaction *item* to be able to roll back, so a six-item lead copied the
   table six times and its cost grew with the table.
3. DynamoDB, DynamoDB Streams and SQS model instances are not tracked. moto appends every
   model instance it ever creates to a class-level list for its dashboard
   (`/moto-api/data.json`), for ever; with (2) that was every copied item of every
   transaction, for streams every shard iterator, for SQS every message and every copy
   handed to a consumer, and memory grew without bound. A service's models are only known
   once its module is imported, so they are imported first (untracking streams used to do
   nothing). Every other service is still tracked, so `/moto-api/data.json` keeps showing
   what SES and SNS "delivered".
4. TransactWriteItems honours ClientRequestToken as DynamoDB does: a successful transaction
   repeated with the same token within ten minutes succeeds again without being applied
   twice; the same token with different items is an IdempotentParameterMismatchException.
5. Stream records are kept for 24 hours as in DynamoDB (`--stream-retention-seconds`, for
   tests); moto kept every record of every table for ever. Reading a trimmed position is a
   TrimmedDataAccessException, not moto's failed assertion (a 500).
6. Shard iterators expire after 15 minutes as in DynamoDB (`--iterator-lifetime-seconds`);
   moto kept every iterator it handed out (one per GetRecords) for ever. An expired or
   unknown iterator is an ExpiredIteratorException, not moto's KeyError (a 500).
7. A stream can roll over as DynamoDB's do every few hours (`POST
   /_emulator/roll-stream?table=<name>`, for tests): the table's shard closes (its
   `EndingSequenceNumber` set; read past its last record, `GetRecords` answers no
   `NextShardIterator`) and a child shard, naming it as `ParentShardId`, takes the new
   records. `DescribeStream` lists both. moto has one shard per table for ever.

`GET /_emulator/stats` reports the process's resident memory, how many model instances
moto tracks, and how many stream records and shard iterators it holds, so tests and the
benchmark can check (3), (5) and (6).
"""
import argparse
import copy
import itertools
import json
import logging
import os
import sys
import threading
import time
import uuid
from datetime import timedelta
from urllib.parse import parse_qs

from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.core.model_instances import model_data
from moto.core.utils import utcnow
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.table import StreamShard
from moto.dynamodb.responses import DynamoHandler
# Imported here, not when the server first routes a request to them, so that their models
# are known to stop_tracking (3) and patched before any request.
from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator, dynamodbstreams_backends
from moto.sqs.models import Queue
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress import serve

TOKEN_WINDOW_SECONDS = 600
MAINTENANCE_INTERVAL_SECONDS = 60
# Set from the command line by main().
stream_retention_seconds = 24 * 3600.0
iterator_lifetime_seconds = 15 * 60.0

# The one lock every request goes through (1), and whether the current thread holds it.
_lock = threading.Lock()
_request = threading.local()


class _Untracked(list):
    """A model's instance list that keeps nothing."""

    def append(self, _instance):
        pass


def stop_tracking(service):
    for model in model_data.get(service, {}).values():
        model.instances_tracked = _Untracked()


def tracked_instances():
    return sum(tracked_by_service().values())


def tracked_by_service():
    return {
        service: count
        for service, models in model_data.items()
        if (count := sum(len(m.instances_tracked) for m in models.values()))
    }


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


_original_wait_for_messages = Queue.wait_for_messages


def wait_for_messages(self, timeout):
    """moto's long-poll wait (ReceiveMessage calls it, lock held, whenever a pass over the
    queue found nothing new, then looks again), with the request lock released meanwhile."""
    if not getattr(_request, "locked", False):
        return _original_wait_for_messages(self, timeout)
    # Taking the queue's condition before letting go of the request lock means a message
    # sent in between cannot go unnoticed: its add_message has to wait for our wait().
    # The condition is let go before the request lock is taken back, so the two are always
    # taken in the same order and cannot deadlock.
    self._messages_lock.acquire()
    _lock.release()
    try:
        try:
            # Just a wake-up (moto's own wait_for returned at once, spinning with the lock
            # held, while messages it could not deliver were visible); moto looks again.
            self._messages_lock.wait(timeout)
        finally:
            self._messages_lock.release()
    finally:
        _lock.acquire()


class TrimmedDataAccess(JsonRESTError):
    def __init__(self):
        super().__init__(
            "com.amazonaws.dynamodb.v20120810#TrimmedDataAccessException",
            "The operation attempted to read past the oldest stream record in a shard.",
        )


class ExpiredIterator(JsonRESTError):
    def __init__(self):
        super().__init__(
            "com.amazonaws.dynamodb.v20120810#ExpiredIteratorException",
            f"Iterator expired or unknown: shard iterators are valid for {iterator_lifetime_seconds:g} seconds.",
        )


_original_iterator_init = ShardIterator.__init__


def iterator_init(self, *args, **kwargs):
    _original_iterator_init(self, *args, **kwargs)
    self.expires_at = time.monotonic() + iterator_lifetime_seconds


def trimmed(iterator):
    position = iterator.sequence_number
    return isinstance(position, int) and position < iterator.stream_shard.starting_sequence_number


_original_get_shard_iterator = DynamoDBStreamsBackend.get_shard_iterator


def get_shard_iterator(self, arn, shard_id, shard_iterator_type, sequence_number=None):
    closed = closed_shards.get(self._get_table_from_arn(arn).name, [])
    shard = next((s for s in closed if s.id == shard_id), None)
    if shard is None:
        iterator = _original_get_shard_iterator(self, arn, shard_id, shard_iterator_type, sequence_number)
    else:
        iterator = ShardIterator(self, shard, shard_iterator_type, sequence_number)
        self.shard_iterators[iterator.arn] = iterator
    if trimmed(iterator):
        del self.shard_iterators[iterator.arn]
        raise TrimmedDataAccess()
    return iterator


def get_records(self, iterator_arn, limit):
    iterator = self.shard_iterators.get(iterator_arn)
    if iterator is None or iterator.expires_at <= time.monotonic():
        raise ExpiredIterator()
    if trimmed(iterator):
        raise TrimmedDataAccess()
    result = iterator.get(limit)
    end = getattr(iterator.stream_shard, "ending_sequence_number", None)
    following = self.shard_iterators.get(result["NextShardIterator"])
    if end is not None and following is not None and following.sequence_number > end:
        # A closed shard read to its end (7): no iterator follows.
        del self.shard_iterators[result.pop("NextShardIterator")]
    return result


# (7) Closed shards, per table name, oldest first.
closed_shards = {}

_original_shard_to_json = StreamShard.to_json


def shard_to_json(self):
    out = _original_shard_to_json(self)
    if getattr(self, "parent_shard_id", None):
        out["ParentShardId"] = self.parent_shard_id
    if getattr(self, "ending_sequence_number", None) is not None:
        out["SequenceNumberRange"]["EndingSequenceNumber"] = str(self.ending_sequence_number)
    return out


def roll_stream(table_name):
    """Closes the table's stream shard and opens its child (7). False: no such stream."""
    table = next((t for t in tables() if t.name == table_name), None)
    if table is None or table.stream_shard is None:
        return False
    parent = table.stream_shard
    after = parent.starting_sequence_number + len(parent.items)
    parent.ending_sequence_number = after - 1
    child = StreamShard(parent.account_id, table)
    child.id = f"shardId-{int(time.time() * 1000):020d}-{uuid.uuid4().hex[:8]}"
    child.parent_shard_id = parent.id
    # Sequence numbers keep growing across shards, as DynamoDB's do.
    child.starting_sequence_number = after + 1000
    table.stream_shard = child
    closed_shards.setdefault(table.name, []).append(parent)
    return True


_original_describe_stream = DynamoDBStreamsBackend.describe_stream


def describe_stream(self, arn):
    stream = _original_describe_stream(self, arn)
    closed = closed_shards.get(self._get_table_from_arn(arn).name, [])
    stream["Shards"] = [s.to_json() for s in closed] + stream["Shards"]
    return stream


def tables():
    # .values(), not [...]: indexing a BackendDict creates the backend it names.
    for account in dynamodb_backends.values():
        for backend in account.values():
            yield from backend.tables.values()


def streams_backends():
    for account in dynamodbstreams_backends.values():
        yield from account.values()


def trim_streams():
    """Drops stream records older than the retention period from the front of each shard."""
    cutoff = utcnow() - timedelta(seconds=stream_retention_seconds)
    for table in tables():
        shard = table.stream_shard
        if shard is None:
            continue
        count = 0
        for record in shard.items:
            if record.record["dynamodb"]["ApproximateCreationDateTime"] >= cutoff:
                break
            count += 1
        if count:
            del shard.items[:count]
            # A record's sequence number is its index plus this; kept for the ones left.
            shard.starting_sequence_number += count


def prune_iterators():
    now = time.monotonic()
    for backend in streams_backends():
        # Every iterator lives equally long and the dict is in creation order.
        expired = [arn for arn, _ in itertools.takewhile(
            lambda entry: entry[1].expires_at <= now, backend.shard_iterators.items())]
        for arn in expired:
            del backend.shard_iterators[arn]


_next_maintenance = 0.0


def maintain():
    """Trims streams and prunes iterators, at most once a minute. Called between requests
    with the lock held, so never inside a transaction, whose rollback counts on the
    stream's length."""
    global _next_maintenance
    now = time.monotonic()
    if now < _next_maintenance:
        return
    _next_maintenance = now + min(MAINTENANCE_INTERVAL_SECONDS, stream_retention_seconds)
    trim_streams()
    prune_iterators()


def patch_moto():
    DynamoDBBackend.transact_write_items = transact_write_items
    DynamoHandler.transact_write_items = transact_write_items_handler
    Queue.wait_for_messages = wait_for_messages
    ShardIterator.__init__ = iterator_init
    DynamoDBStreamsBackend.get_shard_iterator = get_shard_iterator
    DynamoDBStreamsBackend.get_records = get_records
    DynamoDBStreamsBackend.describe_stream = describe_stream
    StreamShard.to_json = shard_to_json
    for service in ("dynamodb", "dynamodbstreams", "sqs"):
        stop_tracking(service)


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def stats():
    return {
        "residentBytes": resident_bytes(),
        "trackedInstances": tracked_instances(),
        # Sent emails and SMS stay tracked on purpose (they are what data.json shows).
        "trackedByService": tracked_by_service(),
        "streamRecords": sum(len(t.stream_shard.items) for t in tables() if t.stream_shard is not None),
        "shardIterators": sum(len(b.shard_iterators) for b in streams_backends()),
    }


class Serialized:
    """WSGI middleware: one request at a time through the wrapped app, plus the stats page."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        with _lock:
            _request.locked = True
            try:
                # Counted under the lock: moto's dicts must not change while they are read.
                if environ.get("PATH_INFO") == "/_emulator/stats":
                    body = json.dumps(stats())
                    start_response("200 OK", [("Content-Type", "application/json")])
                    return [body.encode()]
                if environ.get("PATH_INFO") == "/_emulator/roll-stream" and environ.get("REQUEST_METHOD") == "POST":
                    table = parse_qs(environ.get("QUERY_STRING", "")).get("table", [""])[0]
                    rolled = roll_stream(table)
                    start_response("204 No Content" if rolled else "404 Not Found", [])
                    return [b""]
                maintain()
                return list(self.app(environ, start_response))
            finally:
                _request.locked = False


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
    global stream_retention_seconds, iterator_lifetime_seconds
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--parent-pid", type=int, help="exit when this process exits")
    parser.add_argument("--stream-retention-seconds", type=float, default=stream_retention_seconds,
                        help="how long stream records are kept (DynamoDB: 24 hours)")
    parser.add_argument("--iterator-lifetime-seconds", type=float, default=iterator_lifetime_seconds,
                        help="how long a shard iterator is valid (DynamoDB: 15 minutes)")
    args = parser.parse_args()
    stream_retention_seconds = args.stream_retention_seconds
    iterator_lifetime_seconds = args.iterator_lifetime_seconds
    logging.getLogger("waitress").setLevel(logging.ERROR)
    if args.parent_pid:
        threading.Thread(target=exit_with_parent, args=(args.parent_pid,), daemon=True).start()
    app = DomainDispatcherApplication(create_backend_app)
    patch_moto()
    print(f"AWS emulator (moto) listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    # waitress keeps connections alive; werkzeug's dev server closes every one, which made
    # each SDK call pay a TCP connect (and a DNS lookup) that Lambda never pays warm.
    # Each SQS long poll occupies a thread for up to 20 s (1), so there are threads to spare.
    serve(Serialized(app), host=args.host, port=args.port, threads=32, connection_limit=1000,
          channel_timeout=300, ident="moto")


if __name__ == "__main__":
    main()
