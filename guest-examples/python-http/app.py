"""Example scenario in Python: a shopper who logs in, browses items and adds
to a cart (the same scenario as rust-http and js-http)."""

import random

from horde import HttpUser, between, check, task, var, vu_id


class Shopper(HttpUser):
    host = "http://127.0.0.1:8089"

    @staticmethod
    def wait_time():
        # `horde run --var wait=none` runs without waits (benchmarks).
        return None if var("wait") == "none" else between(0.05, 0.2)

    def on_start(self):
        login = self.client.post(
            "/login", json={"username": f"user{vu_id()}", "password": "secret"}
        )
        login.raise_for_status()
        self.token = login.json()["token"]

    @task(5)
    def view_item(self):
        item = random.randint(1, 1000)
        response = self.client.get(f"/item/{item}", name="/item/[id]")
        check("item has a body", len(response.content) > 0)

    @task(2)
    def index(self):
        self.client.get("/")

    @task(1)
    def add_to_cart(self):
        self.client.post(
            "/cart",
            json={"item": random.randint(1, 1000), "quantity": 1},
            headers={"Authorization": f"Bearer {self.token}"},
        )
