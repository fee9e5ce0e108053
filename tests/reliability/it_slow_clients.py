"""it_slow_clients.py SSLD - 300 trickling connections do not lock other clients out.

A real ssld runs with --max-connections-per-ip 16 and --request-deadline 2. From 127.0.0.1, an
attacker keeps 300 sockets open that send one byte of a request now and then: half trickle the
headers, half send the headers whole and trickle the body (each byte restarts libmicrohttpd's
idle timeout, so without a whole-request deadline they hold their connections forever; 256 of
them used to fill every connection slot). Meanwhile a client on another loopback address
(127.0.0.2) polls GET /v1/health and GET /v1/jobs and must get every answer, while the server
holds at most the per-address limit of the attacker's connections (/metrics
ssld_http_connections). The attacker's connections must be answered 408 and closed once their
request is overdue (ssld_http_request_deadline_total counts them), and when the attacker stops
reconnecting, every one of its sockets must end closed by the server although each keeps
sending. Bounds are generous waits on conditions, not timings.
"""
import http.client
import json
import os
import re
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "service"))
from ssld_harness import Daemon, Failure, check, run, wait_for  # noqa: E402

SOCKETS = 300
PER_IP = 16
DEADLINE_S = 2
OTHER = "127.0.0.2"   # the well-behaved client's source address (all of 127/8 is loopback)


class Attacker(threading.Thread):
    """Keeps up to SOCKETS trickling sockets to the daemon; replaces the closed ones while
    `reconnect` is set. Each slot records whether the server answered 408 and when it closed."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.lock = threading.Lock()
        self.reconnect = True
        self.stop = False
        self.live = {}          # socket -> slot
        self.closed = []        # slots the server closed
        self.opened = 0
        self.error = None

    def payload(self, i):
        head = ("POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: 100000\r\n\r\n").encode()
        # Even slots trickle the headers from the first byte; odd ones send them whole and trickle the body.
        return {"data": head + b"{" + b" " * 99999, "pos": 0 if i % 2 == 0 else len(head), "got": b"", "i": i}

    def open_one(self, i):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        slot = self.payload(i)
        if slot["pos"]:
            try:
                s.sendall(slot["data"][:slot["pos"]])
            except (ConnectionResetError, BrokenPipeError):
                pass   # refused at once (over the per-address limit): the read loop sees the close
        s.setblocking(False)
        self.live[s] = slot
        self.opened += 1

    def close_slot(self, s):
        slot = self.live.pop(s)
        s.close()
        with self.lock:
            self.closed.append(slot)

    def run(self):
        try:
            last_open = {}
            for i in range(SOCKETS):
                self.open_one(i)
            while not self.stop:
                socks = list(self.live)
                readable = select.select(socks, [], [], 0.25)[0] if socks else []
                for s in readable:
                    try:
                        data = s.recv(65536)
                    except (ConnectionResetError, BrokenPipeError):
                        data = b""
                    if data:
                        self.live[s]["got"] += data
                    else:
                        self.close_slot(s)
                for s in list(self.live):   # one more byte on each, the trickle
                    slot = self.live[s]
                    try:
                        s.send(slot["data"][slot["pos"]:slot["pos"] + 1])
                        slot["pos"] += 1
                    except (BlockingIOError, InterruptedError):
                        pass
                    except (ConnectionResetError, BrokenPipeError):
                        self.close_slot(s)
                if self.reconnect:
                    now = time.time()
                    used = {slot["i"] for slot in self.live.values()}
                    for i in range(SOCKETS):
                        if i not in used and now - last_open.get(i, 0) > 1.0:
                            last_open[i] = now
                            self.open_one(i)
        except Exception as e:   # noqa: BLE001 - reported by the main thread
            self.error = e

    def counts(self):
        with self.lock:
            closed = list(self.closed)
        return len(self.live), closed


class Client:
    """Plain HTTP from another loopback address, one connection per request."""

    def __init__(self, port):
        self.port = port

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20, source_address=(OTHER, 0))
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def metric(self, name):
        status, body = self.get("/metrics")
        check(status == 200, "GET /metrics -> %d" % status)
        m = re.search(r"^%s (\S+)$" % re.escape(name), body.decode(), re.M)
        check(m is not None, "/metrics has no %s" % name)
        return float(m.group(1))


def main(exe):
    try:
        probe = socket.socket()
        probe.bind((OTHER, 0))
        probe.close()
    except OSError as e:
        print("SKIP: cannot use %s as a second loopback address (%s)" % (OTHER, e))
        sys.exit(77)
    d = Daemon(exe)
    try:
        d.start("--workers", "0", "--max-connections-per-ip", str(PER_IP), "--request-deadline", str(DEADLINE_S))
        client = Client(d.port)
        check(client.get("/v1/health")[0] == 200, "the daemon does not answer before the attack")

        attacker = Attacker(d.port)
        attacker.start()
        wait_for(lambda: attacker.opened >= SOCKETS or attacker.error, "the attacker opened %d sockets" % SOCKETS)
        check(attacker.error is None, "attacker: %r" % attacker.error)

        # The other client is answered throughout; the server never holds more of the
        # attacker's connections than the per-address limit (plus this client's own).
        most = 0
        for i in range(20):
            for path in ("/v1/health", "/v1/jobs"):
                try:
                    status, body = client.get(path)
                except OSError as e:
                    raise Failure("GET %s from %s during the attack (round %d): %r" % (path, OTHER, i, e))
                check(status == 200, "GET %s during the attack -> %d %r" % (path, status, body[:200]))
                json.loads(body)
            held = client.metric("ssld_http_connections")
            check(held <= PER_IP + 4, "the server holds %d connections; the per-address limit is %d" % (held, PER_IP))
            most = max(most, held)
        check(most >= PER_IP / 2, "the attack never held the server's slots (at most %d connections open)" % most)
        check(attacker.error is None, "attacker: %r" % attacker.error)

        # Overdue requests are answered 408 and closed, however many bytes trickle in.
        def cut():
            return sum(1 for s in attacker.counts()[1] if s["got"].startswith(b"HTTP/1.1 408"))
        wait_for(lambda: cut() >= PER_IP, "%d trickling connections answered 408" % PER_IP)
        sample = next(s for s in attacker.counts()[1] if s["got"].startswith(b"HTTP/1.1 408"))
        body = json.loads(sample["got"].split(b"\r\n\r\n", 1)[1])
        check(body["error"]["code"] == "request_timeout" and "request-deadline" in body["error"]["message"],
              "the 408 answer: %r" % body)
        check(client.metric("ssld_http_request_deadline_total") >= PER_IP, "ssld_http_request_deadline_total")

        # The attacker stops reconnecting but keeps trickling: every socket ends closed.
        attacker.reconnect = False
        wait_for(lambda: attacker.counts()[0] == 0, "every trickling socket closed by the server")
        attacker.stop = True
        attacker.join(30)
        check(attacker.error is None, "attacker: %r" % attacker.error)
        wait_for(lambda: client.metric("ssld_http_connections") <= 1, "the server's connections released")

        # The attacker's own address is served again once its sockets are gone.
        s, j = d.get("/v1/health")
        check(s == 200 and j["status"] == "ok", "GET /v1/health from 127.0.0.1 after the attack -> %d %s" % (s, j))
        check(d.stop() == 0, "ssld did not stop cleanly:\n%s" % d.log())
    finally:
        d.cleanup()


if __name__ == "__main__":
    run(main)
