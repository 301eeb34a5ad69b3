"""A small API client built on `requests`, as a team would ship for its own
service; it knows nothing of Horde or Locust. It keeps a `requests.Session`
in `_session`, which Locust's recipe replaces with the user's client."""

import requests


class ShopError(Exception):
    """The shop answered with an error status."""


class ShopClient:
    def __init__(self, url: str, session: requests.Session = None):
        self.url = url.rstrip("/")
        self._session = session or requests.Session()

    def _check(self, response: requests.Response) -> requests.Response:
        try:
            response.raise_for_status()
        except requests.exceptions.HTTPError as error:
            raise ShopError(str(error)) from error
        return response

    def login(self, username: str, password: str) -> str:
        response = self._session.post(f"{self.url}/login", json={"username": username, "password": password})
        token = self._check(response).json()["token"]
        self._session.headers["Authorization"] = f"Bearer {token}"
        return token

    def item(self, item_id: int) -> dict:
        return self._check(self._session.get(f"{self.url}/item/{item_id}")).json()

    def add_to_cart(self, item_id: int) -> dict:
        return self._check(self._session.post(f"{self.url}/cart", json={"item": item_id})).json()
