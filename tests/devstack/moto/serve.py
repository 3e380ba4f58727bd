"""moto's emulator for the local stack: moto's own WSGI application behind waitress.

`moto_server` serves the same application with werkzeug's development server, which closes the
connection after every response, starts a thread per connection and logs a line per request;
and moto's TransactWriteItems copies whole tables for its rollback (below). Under a test's
thousands of DynamoDB and SQS calls that was most of the emulator's time: `bench.py` beside this
file measures both servers in one run (README, Benchmarks). The emulated services are moto's code,
with one thing DynamoDB guarantees added: no other thread's write lands in the middle of a
conditional write or a transaction (below).

Usage: serve.py -H 127.0.0.1 -p PORT [--threads N]
"""

import argparse
import logging
import sys

import moto.backends as backends

# moto lists its own package directory on every request to find the backend for a host name;
# the list does not change while the server runs.
_MODULES = frozenset(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: _MODULES

import copy  # noqa: E402

import moto.dynamodb.models as dynamodb_models  # noqa: E402
from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: E402
from moto.dynamodb.models.table import Table  # noqa: E402

# moto's TransactWriteItems backs up, for rollback, a deep copy of the whole table once per
# action in the transaction: a transaction of 100 actions on a table of 10,000 items copies a
# million items. Our insights counters write such transactions into a table that grows with
# every order, so a backfill through the emulator became quadratic. The backup here is of the
# items the actions name, which is all a transaction can change; the rest of moto's
# TransactWriteItems (conditions, errors, cancellation reasons) runs unchanged.
_real_transact_write_items = dynamodb_models.DynamoDBBackend.transact_write_items


class _TablesAreBackedUpByItem:
    """`copy` as moto's DynamoDB backend sees it: a table is not copied (see below)."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


dynamodb_models.copy = _TablesAreBackedUpByItem()


def _item_key(backend, op_type, op):
    """(table, hash, range) of the item one action names, or None if moto will refuse it."""
    try:
        table = backend.tables[op["TableName"]]
        attrs = op["Item"] if op_type == "Put" else op["Key"]
        hash_value = DynamoType(attrs[table.hash_key_attr])
        range_value = (
            DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
        )
        return table, hash_value, range_value
    except (KeyError, TypeError, AttributeError):
        return None


def _transact_write_items(self, transact_items):
    backups = {}
    for action in transact_items:
        for op_type, op in action.items():
            named = _item_key(self, op_type, op)
            if named is None:
                continue
            table, hash_value, range_value = named
            slot = (id(table), hash_value, range_value)
            if slot not in backups:
                current = table.get_item(hash_value, range_value)
                backups[slot] = (table, hash_value, range_value, copy.deepcopy(current))
    try:
        return _real_transact_write_items(self, transact_items)
    except Exception:
        for table, hash_value, range_value, before in backups.values():
            table.delete_item(hash_value, range_value)
            if before is not None:
                if range_value is not None:
                    table.items[hash_value][range_value] = before
                else:
                    table.items[hash_value] = before
        raise


dynamodb_models.DynamoDBBackend.transact_write_items = _transact_write_items

import functools  # noqa: E402
import threading  # noqa: E402

# DynamoDB checks and applies a conditional write as one step, and a transaction's changes are
# seen all or none. moto's backend runs on waitress's threads with no lock of its own: two
# conditional writes could both pass their check, a read could see half a transaction, and a
# transaction that failed put its items back as they were when it began, erasing a write another
# thread had made to one of them meanwhile (2026-12-02, `e2e recovery`: ops-api's record of an
# operator's decision vanished while process-events' transaction on the same alert failed). One
# lock around each item operation makes it as atomic and isolated as DynamoDB's. They are short
# (SQS's long polls, the calls that wait, are not behind it); a transaction's own puts take the
# lock again, hence reentrant.
_ITEMS = threading.RLock()


def _one_at_a_time(method):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        with _ITEMS:
            return method(self, *args, **kwargs)

    return call


for _name in (
    "put_item",
    "update_item",
    "delete_item",
    "get_item",
    "query",
    "scan",
    "transact_write_items",
):
    setattr(
        dynamodb_models.DynamoDBBackend,
        _name,
        _one_at_a_time(getattr(dynamodb_models.DynamoDBBackend, _name)),
    )

try:
    import waitress  # noqa: E402
except ImportError:
    sys.exit("serve.py: waitress is not installed in this venv; run bin/setup (infra/requirements.txt)")
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    create_backend_app,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    # SQS long polls hold a thread each for up to 20 s: enough threads that they never starve
    # the other calls.
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args()
    # waitress warns whenever a request waits for a thread; that is load, not a fault.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    app = DomainDispatcherApplication(create_backend_app)
    waitress.serve(
        app,
        host=args.host,
        port=args.port,
        threads=args.threads,
        ident="moto",
        connection_limit=1000,
        channel_timeout=600,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
