"""Test guest: Python's own networking and unchanged third-party client
libraries in the sandbox. `requests` is imported at module level (its
import used to leave a stale network handle that made every socket call
trap). One task; `--var case=NAME` picks what it does, so each test runs
one case against its own real server."""

import http.client
import json
import socket
import urllib.error
import urllib.request
import xmlrpc.client

import paho.mqtt.client as mqtt
import pg8000.native
import redis
import requests

import horde
from horde import HttpUser, check, task, var
from horde.http import HttpSession


def _tcp_get(host: str, port: int) -> bytes:
    """A plain HTTP/1.0 GET over a socket the scenario opens itself."""
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(b"GET /item/1 HTTP/1.0\r\nHost: test\r\n\r\n")
        data = b""
        while chunk := conn.recv(4096):
            data += chunk
    return data


class Libraries(HttpUser):
    wait_time = None

    def on_start(self):
        self.target = var("target", "")
        self.session = requests.Session()

    def case_requests(self):
        reply = requests.get(f"{self.target}/item/1")
        check("requests json", reply.json()["id"] == 1)
        login = self.session.post(f"{self.target}/login", json={"username": "ann", "password": "x"})
        check("requests session post", login.status_code == 200 and "token" in login.json())
        check("requests response type", isinstance(login, requests.Response))
        check("client is a requests.Session", isinstance(self.client, requests.Session))
        with self.client.rename_request("/item/[id]"):
            self.client.get("/item/2")
            self.client.get(f"{self.target}/item/3")
        missing = self.session.get(f"{self.target}/item/0")
        try:
            missing.raise_for_status()
            check("requests HTTPError", False)
        except requests.exceptions.HTTPError:
            check("requests HTTPError", True)

    def case_https(self):
        # This Python has no OpenSSL: the host does the TLS.
        reply = requests.get(f"{self.target}/item/4", timeout=5)
        check("https through requests", reply.status_code == 200 and reply.json()["id"] == 4)
        with urllib.request.urlopen(f"{self.target}/item/5", timeout=5) as answer:
            check("https through urllib", json.loads(answer.read())["id"] == 5)

    def case_refused(self):
        try:
            requests.get(var("refused"), timeout=5)
            check("requests refused raises ConnectionError", False)
        except requests.exceptions.ConnectionError:
            check("requests refused raises ConnectionError", True)
        try:
            urllib.request.urlopen(var("refused"), timeout=5)
            check("urllib refused raises URLError", False)
        except urllib.error.URLError as error:
            check("urllib refused raises URLError", isinstance(error.reason, ConnectionRefusedError))

    def case_raw_socket(self):
        port = int(var("port"))
        with horde.timed("tcp", "raw GET") as call:
            data = _tcp_get(var("address", "127.0.0.1"), port)
            call.length = len(data)
        check("raw socket reply", data.startswith(b"HTTP/1.") and b'"id":1' in data)

    def case_denied_lookup(self):
        try:
            socket.getaddrinfo("not-granted.invalid", 80)
            check("denied lookup names the flag", False)
        except socket.gaierror as error:
            check("denied lookup names the flag", "--allow-host not-granted.invalid:80" in str(error))

    def case_stdlib(self):
        with urllib.request.urlopen(f"{self.target}/item/2", timeout=5) as reply:
            check("urllib json", json.loads(reply.read())["id"] == 2)
        try:
            urllib.request.urlopen(f"{self.target}/item/0")
            check("urllib HTTPError", False)
        except urllib.error.HTTPError as error:
            check("urllib HTTPError", error.code == 404)
        host, port = self.target.split("//")[1].rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request("POST", "/cart", body=json.dumps({"item": 3}),
                     headers={"Content-Type": "application/json", "Authorization": "Bearer token-ann"})
        reply = conn.getresponse()
        check("http.client status", reply.status == 200 and isinstance(reply, http.client.HTTPResponse))
        reply.read()
        conn.request("GET", "/item/3")  # the same connection object again
        check("http.client reuse", json.loads(conn.getresponse().read())["id"] == 3)

    def case_xmlrpc(self):
        proxy = xmlrpc.client.ServerProxy(var("xmlrpc"))
        with horde.timed("xmlrpc", "get_random_number"):
            number = proxy.get_random_number(1, 10)
        check("xmlrpc value", 1 <= number <= 10)
        try:
            proxy.fail("boom")
            check("xmlrpc fault", False)
        except xmlrpc.client.Fault:
            check("xmlrpc fault", True)

    def case_redis(self):
        client = redis.Redis(host="localhost", port=int(var("port")))
        with horde.timed("redis", "SET"):
            client.set("horde:key", "value")
        with horde.timed("redis", "GET") as call:
            value = client.get("horde:key")
            call.length = len(value)
        check("redis value", value == b"value")

    def case_mqtt(self):
        received = []
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"horde-{horde.vu_id()}")
        client.on_message = lambda _client, _data, message: received.append(message.payload)
        topic = f"horde/test/{horde.vu_id()}"
        with horde.timed("mqtt", "connect"):
            client.connect("localhost", int(var("port")))
            client.subscribe(topic, qos=1)
        with horde.timed("mqtt", "publish and receive"):
            client.publish(topic, b"hello", qos=1)
            for _ in range(200):
                client.loop(timeout=0.05)
                if received:
                    break
            if not received:
                raise TimeoutError("the published message did not come back")
        client.disconnect()
        check("mqtt round trip", received == [b"hello"])

    def case_postgres(self):
        with horde.timed("postgres", "connect"):
            db = pg8000.native.Connection(user="horde", password="secret", host="localhost",
                                          port=int(var("port")), database="postgres")
        with horde.timed("postgres", "SELECT") as call:
            rows = db.run("SELECT :n * 2, 'text'", n=21)
            call.length = len(rows)
        db.close()
        check("postgres rows", rows == [[42, "text"]])

    def case_http_behaviours(self):
        # The paths are those of tests/behaviours.rs. `self.client` is a
        # requests.Session here: what requests users get.
        for coding in ("gzip", "deflate", "br", "zstd"):
            reply = self.client.get(f"/coded/{coding}", name="/coded")
            check("requests decodes codings", reply.json()["name"] == "coded")
        big = self.client.get("/bytes?mb=20", name="/bytes 20 MiB")
        check("requests 20 MiB body", len(big.content) == 20 << 20)
        del big
        for _ in range(2):
            reply = self.client.get("/race", name="/race")
            check("requests resends on a closed keep-alive", reply.status_code == 200)
        # Horde's own session (what HttpUser gives without `requests`).
        session = HttpSession()
        gone = session.get("/bytes?mb=80&coding=gzip", name="/bytes discarded", discard_body=True)
        check("discarded body", gone.status_code == 200 and gone.content == b"")
        coded = session.get("/coded/br", name="/coded session")
        check("session decodes codings", coded.json()["name"] == "coded")
        # Header bytes outside ASCII, read as http.client reads them (ISO-8859-1).
        title = "Intro\u2028Part two".encode("utf-8").decode("latin-1")
        for client, name in ((self.client, "/latin1"), (session, "/latin1 session")):
            reply = client.get("/latin1", name=name)
            check("a Latin-1 header byte is kept", reply.headers.get("X-Station") == "Café de Paris")
            check("a header value is kept whole",
                  reply.headers.get("X-Title") == title and reply.headers.get("X-After") == "1")

    @task
    def run(self):
        getattr(self, "case_" + var("case"))()
