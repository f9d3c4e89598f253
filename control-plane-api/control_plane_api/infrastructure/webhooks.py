"""Threshold alerts to the operators' webhooks (Slack-compatible JSON), in the background.

A slow or failing webhook never blocks or fails a metrics update: posts run as bounded background tasks
with a short timeout, and failures are logged (without the URL's query string, which often holds a token).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

logger = logging.getLogger(__name__)


def _safe(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{'/…' if parts.path not in ('', '/') else ''}"


class WebhookNotifier:
    def __init__(self, timeout: float = 5.0, max_in_flight: int = 50,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._tasks: set[asyncio.Task[None]] = set()
        self._max_in_flight = max_in_flight
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def notify(self, urls: Sequence[str], payload: dict[str, Any]) -> None:
        for url in urls:
            if len(self._tasks) >= self._max_in_flight:
                self.dropped += 1
                logger.warning("webhook backlog full; alert to %s dropped", _safe(url))
                continue
            task = asyncio.create_task(self._post(url, payload))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, payload: dict[str, Any]) -> None:
        try:
            response = await self._http.post(url, json=payload)
            response.raise_for_status()
            self.sent += 1
        except httpx.HTTPError as exc:
            self.failed += 1
            logger.warning("webhook %s failed: %s", _safe(url), type(exc).__name__)

    async def drain(self) -> None:
        """Wait for posts in flight (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        await self._http.aclose()
