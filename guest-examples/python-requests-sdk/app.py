"""Locust's recipe for a requests-based SDK, ported: the SDK is built with
`self.host` and its session is replaced with `self.client` (a real
`requests.Session`, recorded by Horde like Locust's). Each SDK call is then
recorded by path, as Locust records it."""

import random

import requests

from horde import HttpUser, check, constant, task

from shop_sdk import ShopClient, ShopError


class ShopUser(HttpUser):
    wait_time = constant(0)

    def on_start(self):
        check("client is a requests.Session", isinstance(self.client, requests.Session))
        self.shop = ShopClient(url=self.host)
        # overwrite the internal _session attribute with the Horde session
        self.shop._session = self.client
        self.shop.login("alice", "secret")

    @task(3)
    def view_item(self):
        item = self.shop.item(random.randint(1, 1000))
        check("item has an id", "id" in item)

    @task
    def add_to_cart(self):
        self.shop.add_to_cart(1)

    @task
    def missing_item(self):
        try:
            self.shop.item(0)
            check("a 404 raises the SDK's error", False)
        except ShopError:
            check("a 404 raises the SDK's error", True)
