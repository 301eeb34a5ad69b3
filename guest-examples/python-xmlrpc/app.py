"""Example scenario in Python: Locust's XML-RPC user, ported. One task calls
`get_time()`, the other `get_random_number(0, 100)`; Horde records each call
as type `xmlrpc`, named by the method, with faults as failures."""

from horde import XmlRpcUser, between, check, task, var


class TimeUser(XmlRpcUser):
    host = "http://127.0.0.1:8877"

    @staticmethod
    def wait_time():
        # `horde run --var wait=none` runs without waits (benchmarks).
        return None if var("wait") == "none" else between(0.1, 1)

    @task
    def get_time(self):
        self.client.get_time()

    @task
    def get_random_number(self):
        number = self.client.get_random_number(0, 100)
        check("random number in 0..=100", 0 <= number <= 100)
