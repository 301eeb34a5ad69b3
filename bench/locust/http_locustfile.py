"""Locust FastHttpUser for `cargo xtask bench`: GET /item/1 with no wait."""

from locust import FastHttpUser, constant, task


class Getter(FastHttpUser):
    wait_time = constant(0)

    @task
    def item(self):
        self.client.get("/item/1")
