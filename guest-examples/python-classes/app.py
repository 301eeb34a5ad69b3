"""Example scenario in Python: two user classes in one run, as in Locust.
Shoppers (weight 3) log in as `user<VU id>` and browse; exactly one admin
(fixed_count 1) logs in as `admin` and checks the orders page. Every event
carries the tag `user_class`, so the summary and JSON report each class;
`--user-class Admin` runs the admin alone (the same scenario as
rust-classes and js-classes)."""

from horde import HttpUser, between, constant, task, vu_id


class Shopper(HttpUser):
    host = "http://127.0.0.1:8089"
    weight = 3
    wait_time = between(0.05, 0.2)

    def on_start(self):
        login = self.client.post("/login", json={"username": f"user{vu_id()}", "password": "secret"})
        login.raise_for_status()
        self.token = login.json()["token"]

    @task(3)
    def view_item(self):
        self.client.get("/item/7", name="/item/[id]")

    @task
    def add_to_cart(self):
        cart = self.client.post(
            "/cart",
            json={"item": 7, "quantity": 1},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        cart.raise_for_status()


class Admin(HttpUser):
    fixed_count = 1
    wait_time = constant(0.1)

    def on_start(self):
        login = self.client.post("/login", json={"username": "admin", "password": "secret"})
        login.raise_for_status()
        self.token = login.json()["token"]

    @task
    def orders(self):
        self.client.get(
            "/admin/orders", headers={"Authorization": f"Bearer {self.token}"}
        ).raise_for_status()
