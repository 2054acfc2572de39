"""The local AWS emulator: moto_server, with DynamoDB requests applied one at a time.

moto serves each request on its own thread and does not lock its DynamoDB backend, so two
concurrent TransactWriteItems calls can both pass a condition that real DynamoDB would let only
one of pass (seen: two accounts created for one email under concurrent invitation acceptances).
DynamoDB evaluates a transaction's conditions and writes atomically; serialising DynamoDB
requests restores that guarantee. Other services (SQS long polls in particular) stay concurrent.

Usage: emulator.py HOST PORT
"""

import sys
import threading

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


def main() -> None:
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
