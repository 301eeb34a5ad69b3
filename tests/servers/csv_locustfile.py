"""A minimal Locust user (GET / every 0.1 s): tests/outputs.rs runs the real
Locust with --csv to compare its CSV headers with Horde's."""

from locust import HttpUser, constant, task

class Reader(HttpUser):
    wait_time = constant(0.1)

    @task
    def index(self):
        self.client.get("/")
