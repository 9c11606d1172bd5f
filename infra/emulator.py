"""Local AWS emulator for `make dev` and the tests: moto's own server and backends, with
each request handled atomically.

Why not plain `moto_server`: it serves requests on concurrent threads, and its DynamoDB
TransactWriteItems rolls back a failed transaction by restoring a snapshot of the whole
table, which silently drops writes another thread committed meanwhile. Real DynamoDB
never does that, and our identity invariants are tested under concurrency, so requests
are serialised here. Nothing else about moto is changed.
"""

import argparse
import logging
import os
import sys
import threading
import time

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class Serialized:
    """WSGI middleware: one request at a time through the wrapped app."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
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
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if args.parent_pid:
        threading.Thread(target=exit_with_parent, args=(args.parent_pid,), daemon=True).start()
    app = DomainDispatcherApplication(create_backend_app)
    print(f"AWS emulator (moto) listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    run_simple(args.host, args.port, Serialized(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
