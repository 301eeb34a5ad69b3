"""Example scenario in Python: a login flow over test data. Each task takes
the next row of the `users` feed (`horde run --data users=users.csv`; each
row once by default), logs in as that user and buys the row's item in a
`checkout` group (the same scenario as rust-data and js-data)."""

from horde import HttpUser, data, group, tags, task


class Customer(HttpUser):
    host = "http://127.0.0.1:8089"
    wait_time = None
    # The feed this scenario reads, and how; the operator grants the file.
    options = {"data": "users;strategy=unique"}

    @task
    def login_and_buy(self):
        account = data("users").next()
        login = self.client.post(
            "/login",
            json={"username": account["username"], "password": account["password"]},
            tags={"flow": "login"},
        )
        login.raise_for_status()
        token = login.json()["token"]
        # The purchase is timed as one entry, `group checkout`, and its
        # requests are filed under it: `checkout::/cart`. Everything in it is
        # tagged flow=checkout (`--breakdown flow`, thresholds).
        with tags(flow="checkout"), group("checkout"):
            self.client.get(f"/item/{account['item']}", name="/item/[id]")
            cart = self.client.post(
                "/cart",
                json={"item": account["item"], "quantity": 1},
                headers={"Authorization": f"Bearer {token}"},
            )
            cart.raise_for_status()
