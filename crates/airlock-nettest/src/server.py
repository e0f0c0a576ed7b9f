"""A test server for airlock's egress tests: static files (a PEP 503 package
index among them) and git repositories over smart HTTP (`git http-backend`
as CGI), over HTTP or HTTPS. Every accepted connection and every request is
appended to a log (one JSON object a line), so a test can tell what reached
the server, or that nothing did. Prints its port once it listens.

usage: server.py ROOT LOG BIND [CERT KEY]
  ROOT/files/...  served as static files under /
  ROOT/git/NAME   bare repositories, served under /git/NAME
"""

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

ROOT, LOG, BIND = sys.argv[1], sys.argv[2], sys.argv[3]
CONTEXT = None
if len(sys.argv) > 5:
    CONTEXT = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    CONTEXT.load_cert_chain(sys.argv[4], sys.argv[5])
LOCK = threading.Lock()


def log(**entry):
    with LOCK, open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=os.path.join(ROOT, "files"), **kwargs)

    def setup(self):
        if CONTEXT is not None:
            # The handshake here, in the connection's own thread: a client
            # that never speaks TLS holds up only itself.
            self.request.settimeout(60)
            self.request = CONTEXT.wrap_socket(self.request, server_side=True)
        super().setup()

    def log_message(self, format, *args):
        pass

    def record(self):
        log(event="request", method=self.command, path=self.path,
            host=self.headers.get("Host", ""), tls=CONTEXT is not None)

    def do_GET(self):
        self.record()
        if self.path.startswith("/git/"):
            return self.git()
        return super().do_GET()

    def do_HEAD(self):
        self.record()
        return super().do_HEAD()

    def do_POST(self):
        self.record()
        if self.path.startswith("/git/"):
            return self.git()
        self.send_error(405)

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def git(self):
        path, _, query = self.path.partition("?")
        body = self.body()
        home = os.path.join(ROOT, "home")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_PROJECT_ROOT": os.path.join(ROOT, "git"),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path[len("/git"):],
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
        }
        for name in ("Git-Protocol", "Content-Encoding"):
            if name in self.headers:
                key = "GIT_PROTOCOL" if name == "Git-Protocol" else "HTTP_CONTENT_ENCODING"
                env[key] = self.headers[name]
        out = subprocess.run(["git", "http-backend"], input=body, env=env,
                             stdout=subprocess.PIPE, check=False).stdout
        head, sep, payload = out.partition(b"\r\n\r\n")
        if not sep:
            head, _, payload = out.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET

    def process_request(self, request, client_address):
        log(event="connect", peer=client_address[0])
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        log(event="error", peer=client_address[0], error=repr(sys.exc_info()[1]))


server = Server((BIND, 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
