"""A small client for the FleetPulse HTTP API, used by `status`, `history` and `logs`.

Every failure becomes an ApiError whose message says what to do next (start the API, check
the token, pick a known host) instead of a stack trace.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp

from fleetpulse.core.errors import FleetPulseError

DEFAULT_API = "http://127.0.0.1:9185"
TOKEN_ENV = "FLEETPULSE_API_TOKEN"


class ApiError(FleetPulseError):
    """The API could not answer; the message is meant for the person at the terminal."""


class ApiUnreachable(ApiError, ConnectionError):
    """Nothing answers at the API's address (yet): a follower may wait and try again."""


@dataclass(frozen=True, slots=True)
class ApiTarget:
    base_url: str = DEFAULT_API
    token: str = field(default="", repr=False)
    timeout: float = 10.0


def api_target(url: str | None, config_api_listen: str | None, config_token: str) -> ApiTarget:
    """--api wins, then the config's api.listen, then the default; the token comes from
    $FLEETPULSE_API_TOKEN or the config."""
    base = url or (f"http://{config_api_listen}" if config_api_listen else DEFAULT_API)
    if base.startswith("http://0.0.0.0:"):
        base = base.replace("0.0.0.0", "127.0.0.1", 1)
    token = os.environ.get(TOKEN_ENV) or config_token
    return ApiTarget(base.rstrip("/"), token)


class ApiClient:
    def __init__(self, target: ApiTarget) -> None:
        self.target = target
        headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        self._session = aiohttp.ClientSession(headers=headers)

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._session.close()

    def _explain(self, status: int, body: str, path: str) -> ApiError:
        try:
            message = json.loads(body).get("error", body)
        except (ValueError, AttributeError):
            message = body.strip()[:200]
        if status == 401:
            return ApiError(
                f"the API at {self.target.base_url} refused the token ({message}); set "
                f"${TOKEN_ENV} or api.token in the config"
            )
        return ApiError(f"{message} (HTTP {status} from {path})")

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        text = await self.get_text(path, params)
        try:
            return json.loads(text)
        except ValueError:
            raise ApiError(f"the API answered {path} with something that is not JSON") from None

    async def get_text(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> str:
        """The body of a GET; `on_progress` hears the bytes received so far, chunk by chunk."""
        url = f"{self.target.base_url}{path}"
        try:
            async with self._session.get(
                url,
                params=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.target.timeout),
            ) as response:
                chunks = []
                received = 0
                async for chunk in response.content.iter_chunked(64 * 1024):
                    chunks.append(chunk)
                    received += len(chunk)
                    if on_progress is not None:
                        on_progress(received)
                body = b"".join(chunks).decode("utf-8", "replace")
                if response.status != 200:
                    raise self._explain(response.status, body, path)
                return body
        except aiohttp.ClientConnectorError:
            raise ApiUnreachable(
                f"cannot reach the FleetPulse API at {self.target.base_url}; is `fleetpulse up` "
                "or `fleetpulse collector` running? (set --api URL to use another address)"
            ) from None
        except TimeoutError:
            raise ApiError(
                f"the API at {self.target.base_url} did not answer within {self.target.timeout:g}s"
            ) from None
        except aiohttp.ClientError as exc:
            raise ApiError(f"request to {url} failed: {exc}") from None

    async def stream_lines(
        self,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str] | None = None,
        on_open: Callable[[], None] | None = None,
    ) -> AsyncIterator[str]:
        """Lines of a long-lived response (server-sent events); no total timeout. `on_open`
        hears that the API accepted the stream, before its first line (which may be long)."""
        url = f"{self.target.base_url}{path}"
        try:
            async with self._session.get(
                url,
                params=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=self.target.timeout, sock_read=60.0
                ),
            ) as response:
                if response.status != 200:
                    raise self._explain(response.status, await response.text(), path)
                if on_open is not None:
                    on_open()
                async for raw in response.content:
                    yield raw.decode("utf-8", "replace").rstrip("\r\n")
        except aiohttp.ClientConnectorError:
            raise ApiUnreachable(
                f"cannot reach the FleetPulse API at {self.target.base_url}"
            ) from None
