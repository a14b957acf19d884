"""One attempt to deliver a push notification: resolve and judge the host, POST the body to the
judged address, read the status, all within one deadline; and what the attempt's end means.

The notifier (:mod:`a2a_grpc.push`) decides what to do next (count, wait, try again, give up);
this module only makes the request and says how it ended, naming neither the path, the query nor
user info of the URL in anything it returns (they may hold secrets).
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import httpx

from a2a_grpc._push_body import Body
from a2a_grpc.security.webhooks import (
    SIGNATURE_HEADER,
    WebhookPolicy,
    WebhookRefusedError,
    WebhookResolveError,
)

__all__ = ["Outcome", "Signer", "attempt", "retry_after"]

_DRAIN_BYTES: Final = 64 * 1024  # answer bytes read so a connection can be reused

Signer = Callable[[Body, int], Awaitable[str]]
"""``(body, its size) -> the signature header's value``."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended."""

    delivered: bool = False
    last: str = ""
    """Why it failed, for the log: ``HTTP 503``, ``ConnectError``, ``refused: ...``."""
    final: bool = False
    """Retrying cannot help (a refused target, a 4xx, a URL httpx cannot use)."""
    retry_after: float | None = None
    """Seconds the receiver asked to wait (``Retry-After``), if it did."""
    refused: bool = False
    """The webhook policy refused the target."""
    timed_out: bool = False
    """The deadline ended the attempt before the status came."""


async def attempt(
    client: httpx.AsyncClient,
    policy: WebhookPolicy,
    url: str,
    body: Body,
    headers: dict[str, str],
    *,
    timeout: httpx.Timeout,
    deadline: float,
    signer: Signer | None,
) -> Outcome:
    """POST ``body`` to ``url`` within ``deadline`` seconds, from name resolution to the end of the
    answer; ``timeout`` bounds each read, write, connect and pool wait on the way."""
    response: httpx.Response | None = None
    try:
        async with asyncio.timeout(deadline):
            try:
                # Resolved and judged on every attempt, and the connection goes to the address that
                # was judged: no window for DNS rebinding between the check and the connection.
                pinned = await policy.resolve(url)
            except WebhookRefusedError as exc:
                # Reasons name the host, never the path or user info.
                return Outcome(last=f"refused: {exc.reason}", final=True, refused=True)
            except WebhookResolveError as exc:
                return Outcome(last=str(exc))
            request_headers = dict(headers, Host=pinned.host_header)
            size = sum(len(chunk) for chunk in body)
            if signer is not None:
                request_headers[SIGNATURE_HEADER] = await signer(body, size)
            content: bytes | AsyncIterator[bytes]
            if len(body) == 1:
                content = body[0]
            else:  # sent chunk by chunk, never joined; the length is known
                content, request_headers["Content-Length"] = _chunks(body), str(size)
            sni = pinned.sni_hostname
            try:
                request = client.build_request(
                    "POST",
                    pinned.url,
                    content=content,
                    headers=request_headers,
                    timeout=timeout,
                    extensions={"sni_hostname": sni} if sni else None,
                )
                response = await client.send(request, stream=True, follow_redirects=False)
                try:
                    await _drain(response)
                finally:
                    await response.aclose()
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                # Not str(exc): it may quote the URL, credentials and all. Retrying cannot fix the URL.
                return Outcome(last=type(exc).__name__, final=True)
            except httpx.TransportError as exc:  # connect/read/write errors and httpx's timeouts
                if response is None:
                    return Outcome(last=type(exc).__name__)
                # The status was read; a failure while reading the rest of the answer changes nothing.
    except TimeoutError:
        if response is None:
            return Outcome(last=f"deadline exceeded (attempt_deadline={deadline} s)", timed_out=True)
    if response.is_success:
        return Outcome(delivered=True)
    status = response.status_code
    if status != 429 and status < 500:
        return Outcome(last=f"HTTP {status}", final=True)  # 3xx (never followed), 4xx: no change
    return Outcome(last=f"HTTP {status}", retry_after=retry_after(response.headers.get("Retry-After")))


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delay-seconds or HTTP-date), or None if unusable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


async def _chunks(body: Body) -> AsyncIterator[bytes]:
    for chunk in body:
        yield chunk


async def _drain(response: httpx.Response) -> None:
    """Read and drop a short answer, so that its connection can carry the next delivery; only the
    status matters. A longer answer is left unread (closing the response closes its connection)."""
    read = 0
    try:
        async for chunk in response.aiter_raw():
            read += len(chunk)
            if read > _DRAIN_BYTES:
                return
    except httpx.StreamError:  # already read (a transport that answers from memory): nothing to drain
        return
