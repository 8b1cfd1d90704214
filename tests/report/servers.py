"""Small real servers on 127.0.0.1 for the doctor's tests: DNS (dnspython), HTTP, SMTP (aiosmtpd)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dns.message
import dns.rcode
import dns.resolver
import dns.rrset


@contextmanager
def dns_server(txt: dict[str, list[str]], *, offline: bool = False) -> Iterator[dns.resolver.Resolver]:
    """A UDP DNS server answering TXT from `txt` and the root's NS; SERVFAIL everywhere when offline."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def answer(wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text()
        if offline:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name == "." and dns.rdatatype.to_text(question.rdtype) == "NS":
            response.answer.append(dns.rrset.from_text(".", 300, "IN", "NS", "a.root-servers.net."))
        elif name.rstrip(".") in txt and dns.rdatatype.to_text(question.rdtype) == "TXT":
            for record in txt[name.rstrip(".")]:
                chunks = " ".join(f'"{record[i:i + 200]}"' for i in range(0, len(record), 200))
                response.answer.append(dns.rrset.from_text(name, 300, "IN", "TXT", chunks))
        elif name.rstrip(".") not in txt:
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()

    def serve() -> None:
        while not stop.is_set():
            try:
                wire, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            sock.sendto(answer(wire), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = sock.getsockname()[1]
    resolver.lifetime = 3.0
    try:
        yield resolver
    finally:
        stop.set()
        thread.join()
        sock.close()


@contextmanager
def http_server(status_for_unsubscribe: int, host: str = "127.0.0.1") -> Iterator[str]:
    """An HTTP server answering `status_for_unsubscribe` under /unsubscribe/ and 404 elsewhere."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            status = status_for_unsubscribe if self.path.startswith("/unsubscribe/") else 404
            body = b"<p>This link is not valid.</p>"
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
