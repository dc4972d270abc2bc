#!/usr/bin/env python3
"""A small HTTPS (or HTTP) file server on 127.0.0.1 for tests: a stand-in for a site mirror.

Usage: https-server.py ROOT [--cert server.pem --key server.key] [--port-file FILE]
Binds an ephemeral port on 127.0.0.1, writes the port to --port-file (or stdout), serves ROOT
read-only, and exits when its parent dies (stdin closes) or on SIGTERM.
"""
import argparse
import functools
import http.server
import os
import ssl
import sys
import threading


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("https-server: " + (fmt % args) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--port-file")
    args = parser.parse_args()
    handler = functools.partial(QuietHandler, directory=args.root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.rename(tmp, args.port_file)
    else:
        print(port, flush=True)

    def watch_parent():
        # stdin is a pipe from the test; EOF means the test process is gone.
        try:
            sys.stdin.read()
        except Exception:
            pass
        os._exit(0)

    if not sys.stdin.isatty():
        threading.Thread(target=watch_parent, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
