"""The local AWS emulator: moto_server, made to behave like DynamoDB where the code depends on it.

1. DynamoDB requests are applied one at a time. moto serves each request on its own thread and
   does not lock its DynamoDB backend, so two concurrent TransactWriteItems calls could both pass
   a condition that real DynamoDB lets only one of pass. Other services (SQS long polls in
   particular) stay concurrent.

2. Expressions are checked as DynamoDB checks them, which moto does not always do: every `#name`
   and `:value` an expression uses must be defined, every one defined must be used, and a bare
   attribute name must not be a reserved word. Real DynamoDB answers ValidationException (a 500
   for us) where moto used to let such a request through.

3. A transaction copies only the items it touches. moto deep-copies every table a
   TransactWriteItems names, for rollback; on a table of any size that made each transaction cost
   the whole table and grew the process by gigabytes under load. Here the conditions are all
   evaluated first (they cannot depend on each other: a transaction touches each item once), the
   writes are applied only when all pass, and a write that fails midway restores the touched
   items from their own copies.

4. Fault mode, for proving the code copes with what DynamoDB does under load:
   `CALLPLANE_EMULATOR_FAULTS=conflict:0.1,throttle:0.05,error:0.02` answers that share of
   DynamoDB data-plane requests, before applying them, with the error DynamoDB sends:
   - conflict: TransactionCanceledException with a `TransactionConflict` reason on one item
     (TransactWriteItems), TransactionConflictException (PutItem, UpdateItem, DeleteItem);
   - throttle: ThrottlingException or ProvisionedThroughputExceededException (HTTP 400);
   - error: InternalServerError (HTTP 500).
   `CALLPLANE_EMULATOR_SEED` makes the draw repeatable. `GET /_callplane/stats` answers the
   faults injected so far, the DynamoDB requests answered by operation, and the process's peak
   memory.

Usage: emulator.py HOST PORT
"""

import io
import json
import os
import random
import re
import resource
import sys
import threading

from werkzeug.serving import run_simple
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
)
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.parsing.reserved_keywords import ReservedKeywords
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

PREFIX = "com.amazonaws.dynamodb.v20120810#"
DATA_PLANE = {
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
    "BatchWriteItem", "TransactWriteItems", "TransactGetItems",
}
SINGLE_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
EXPRESSIONS = (
    "ConditionExpression", "UpdateExpression", "KeyConditionExpression", "FilterExpression",
    "ProjectionExpression",
)
FUNCTIONS_AND_KEYWORDS = {
    "attribute_exists", "attribute_not_exists", "attribute_type", "begins_with", "contains",
    "size", "if_not_exists", "list_append", "and", "or", "not", "between", "in", "set",
    "remove", "add", "delete",
}
IDENTIFIER = re.compile(r"(?<![#:\w])([A-Za-z_][A-Za-z0-9_]*)\s*(\()?")


def parse_faults(spec: str) -> dict:
    faults = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kind, _, rate = part.partition(":")
        if kind not in ("conflict", "throttle", "error"):
            raise SystemExit(f"CALLPLANE_EMULATOR_FAULTS: unknown fault {kind!r}")
        faults[kind] = float(rate)
    return faults


def validation(message: str) -> tuple:
    return 400, {"__type": PREFIX + "ValidationException", "message": message}


def check_expressions(op: dict):
    """The error DynamoDB gives for this operation's expressions, or None."""
    text = " ".join(op[name] for name in EXPRESSIONS if isinstance(op.get(name), str))
    names = op.get("ExpressionAttributeNames") or {}
    values = op.get("ExpressionAttributeValues") or {}
    used_names = set(re.findall(r"#[A-Za-z0-9_]+", text))
    used_values = set(re.findall(r":[A-Za-z0-9_]+", text))
    for name in sorted(used_names - set(names)):
        return validation(
            "Value provided in ExpressionAttributeNames unused in expressions: "
            f"An expression attribute name used in the document path is not defined; attribute name: {name}"
        )
    for value in sorted(used_values - set(values)):
        return validation(
            f"An expression attribute value used in expression is not defined; attribute value: {value}"
        )
    if set(names) - used_names:
        keys = ", ".join(sorted(set(names) - used_names))
        return validation(f"Value provided in ExpressionAttributeNames unused in expressions: keys: {{{keys}}}")
    if set(values) - used_values:
        keys = ", ".join(sorted(set(values) - used_values))
        return validation(f"Value provided in ExpressionAttributeValues unused in expressions: keys: {{{keys}}}")
    reserved = ReservedKeywords.get_reserved_keywords()
    for name in EXPRESSIONS:
        expression = op.get(name)
        if not isinstance(expression, str):
            continue
        for word, call in IDENTIFIER.findall(expression):
            if call or word.lower() in FUNCTIONS_AND_KEYWORDS:
                continue
            if word.upper() in reserved:
                return validation(
                    f"Invalid {name}: Attribute name is a reserved keyword; reserved keyword: {word}"
                )
    return None


class Dynamo:
    """WSGI middleware in front of moto for DynamoDB requests (see the module doc)."""

    def __init__(self, app, faults: dict, rng: random.Random):
        self.app = app
        self.lock = threading.Lock()
        self.faults = faults
        self.rng = rng
        self.injected = {kind: 0 for kind in ("conflict", "throttle", "error")}
        # DynamoDB requests answered, by operation (benchmarks read them from the stats).
        self.requests = {}

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/_callplane/stats":
            peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return respond(start_response, 200, {"faults": self.injected, "peak_rss_mib": peak_kib // 1024,
                                                 "dynamodb_requests": self.requests})
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return self.app(environ, start_response)
        operation = target.split(".", 1)[-1]
        with self.lock:
            self.requests[operation] = self.requests.get(operation, 0) + 1
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        error = self.check(operation, body)
        if error is not None:
            return respond(start_response, *error)
        with self.lock:
            fault = self.draw(operation, body)
            if fault is not None:
                return respond(start_response, *fault)
            # Materialise the body inside the lock: the write happens while it is produced.
            return list(self.app(environ, start_response))

    def check(self, operation: str, body: dict):
        if operation == "TransactWriteItems":
            for entry in body.get("TransactItems") or []:
                for op in entry.values():
                    error = check_expressions(op)
                    if error:
                        return error
            return None
        if operation in DATA_PLANE:
            return check_expressions(body)
        return None

    def draw(self, operation: str, body: dict):
        if operation not in DATA_PLANE or not self.faults:
            return None
        roll = self.rng.random()
        for kind in ("conflict", "throttle", "error"):
            rate = self.faults.get(kind, 0.0)
            if roll < rate:
                fault = self.fault(kind, operation, body)
                if fault is not None:
                    self.injected[kind] += 1
                return fault
            roll -= rate
        return None

    def fault(self, kind: str, operation: str, body: dict):
        if kind == "error":
            return 500, {"__type": PREFIX + "InternalServerError", "message": "Internal server error"}
        if kind == "throttle":
            name = self.rng.choice(["ThrottlingException", "ProvisionedThroughputExceededException"])
            return 400, {"__type": PREFIX + name, "message": "Rate of requests exceeds the allowed throughput."}
        if operation == "TransactWriteItems":
            count = len(body.get("TransactItems") or [])
            if count == 0:
                return None
            hit = self.rng.randrange(count)
            reasons = [
                {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
                if i == hit else {"Code": "None"}
                for i in range(count)
            ]
            codes = ", ".join(r["Code"] for r in reasons)
            return 400, {
                "__type": PREFIX + "TransactionCanceledException",
                "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
                "CancellationReasons": reasons,
            }
        if operation in SINGLE_WRITES:
            return 400, {
                "__type": PREFIX + "TransactionConflictException",
                "message": "Transaction is ongoing for the item",
            }
        return None


def respond(start_response, status: int, body: dict):
    payload = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 500: "Internal Server Error"}[status]
    start_response(
        f"{status} {reason}",
        [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Content-Length", str(len(payload))),
            ("x-amzn-RequestId", f"emulator-{random.getrandbits(64):016x}"),
        ],
    )
    return [payload]


def transact_write_items(self, transact_items):
    """TransactWriteItems that copies only the items it touches (see the module doc)."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    seen = set()
    planned = []
    errors = []
    for entry in transact_items:
        if len(entry) > 1:
            raise MockValidationException("TransactItems can only contain one of Check, Put, Update or Delete")
        op_type, op = next(iter(entry.items()))
        table = self.get_table(op["TableName"])
        if op_type == "Put":
            key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = op["Item"][table.range_key_attr]
        else:
            key = op["Key"]
        identity = (op["TableName"], json.dumps(key, sort_keys=True))
        if identity in seen:
            raise MultipleTransactionsException()
        seen.add(identity)
        current = self.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        passed = condition is None or get_filter_expression(
            condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        ).expr(current)
        if passed:
            errors.append((None, None, None))
        else:
            item = None
            if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                item = current.to_json()["Attributes"]
            errors.append(("ConditionalCheckFailed", "The conditional request failed", item))
        original = None if current is None else current.to_json()["Attributes"]
        planned.append((op_type, op, key, original))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)

    applied = []
    try:
        for op_type, op, key, original in planned:
            applied.append((op["TableName"], key, original))
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(op["TableName"], op["Item"], expression_attribute_names=names,
                              expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(op["TableName"], key, expression_attribute_names=names,
                                 expression_attribute_values=values)
            elif op_type == "Update":
                self.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                                 expression_attribute_names=names, expression_attribute_values=values)
    except Exception as err:
        for table_name, key, original in reversed(applied):
            if original is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, original)
        if isinstance(err, (MockValidationException, ConditionalCheckFailed)):
            raise
        failed = len(applied) - 1
        raise TransactionCanceledException([
            (type(err).__name__, str(err), None) if i == failed else (None, None, None)
            for i in range(len(planned))
        ])


def main() -> None:
    DynamoDBBackend.transact_write_items = transact_write_items
    host, port = sys.argv[1], int(sys.argv[2])
    faults = parse_faults(os.environ.get("CALLPLANE_EMULATOR_FAULTS", ""))
    seed = os.environ.get("CALLPLANE_EMULATOR_SEED")
    rng = random.Random(int(seed)) if seed else random.Random()
    if faults:
        print(f"emulator: DynamoDB fault mode {faults} (seed {seed or 'random'})", file=sys.stderr)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        host,
        port,
        Dynamo(app, faults, rng),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
