"""The local AWS emulator: moto_server, with DynamoDB requests applied one at a time.

moto serves each request on its own thread and does not lock its DynamoDB backend, so two
concurrent TransactWriteItems calls can both pass a condition that real DynamoDB would let only
one of pass (seen: two accounts created for one email under concurrent invitation acceptances).
DynamoDB evaluates a transaction's conditions and writes atomically; serialising DynamoDB
requests restores that guarantee. Other services (SQS long polls in particular) stay concurrent.

It also snapshots each table once per transaction: moto deep-copies the table for rollback once
per *item* of a TransactWriteItems (a 3-item transaction copied the table three times), which
made every transaction cost a multiple of the table's size.

Usage: emulator.py HOST PORT
"""

import sys
import threading

import copy

import moto.dynamodb.models as dynamo_models
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


class SerialDynamo:
    """WSGI middleware holding one lock while a DynamoDB request is handled."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            # Materialise the body inside the lock: the write happens while it is produced.
            return list(self.app(environ, start_response))


class SnapshotOncePerTransaction:
    """Stands in for the `copy` module inside moto's DynamoDB models: while a transaction runs,
    a second deep copy of the same table returns the first (nothing changed in between: the
    snapshots are all taken before any write). Only tables are cached; items are copied as before. DynamoDB requests run one at a time (above), so
    one cache is enough."""

    def __init__(self):
        self.cache = None

    def deepcopy(self, obj, memo=None):
        if self.cache is None or not isinstance(obj, dynamo_models.Table):
            return copy.deepcopy(obj, memo)
        if id(obj) not in self.cache:
            self.cache[id(obj)] = copy.deepcopy(obj, memo)
        return self.cache[id(obj)]

    def __getattr__(self, name):
        return getattr(copy, name)


def snapshot_tables_once() -> None:
    shim = SnapshotOncePerTransaction()
    dynamo_models.copy = shim
    transact = dynamo_models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        shim.cache = {}
        try:
            return transact(self, transact_items)
        finally:
            shim.cache = None

    dynamo_models.DynamoDBBackend.transact_write_items = transact_write_items


def main() -> None:
    snapshot_tables_once()
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        host,
        port,
        SerialDynamo(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
