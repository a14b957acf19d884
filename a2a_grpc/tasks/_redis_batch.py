"""Commands recorded, then sent in one round trip (a pipeline), or, on a Redis Cluster, whose
pipelines refuse scripts, as chains run at once: each chain's commands in order, the answers in the
order the commands were recorded (see ``RedisTaskStore.pipeline``)."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import Callable
from typing import Any

__all__ = ["Batch"]


class Batch:
    """Commands recorded for :meth:`RedisTaskStore.pipeline` (``batch.hget(...)`` records one)."""

    def __init__(self) -> None:
        self.calls: builtins.list[tuple[object, str, tuple[Any, ...], dict[str, Any]]] = []
        self._chain: object = None

    def chain(self, name: object) -> None:
        self._chain = name

    def __getattr__(self, name: str) -> Callable[..., None]:
        def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append(
                (self._chain if self._chain is not None else len(self.calls), name, args, kwargs)
            )

        return record

    async def run_pipeline(self, client: Any) -> builtins.list[Any]:
        pipe = client.pipeline(transaction=False)
        try:
            for _, name, args, kwargs in self.calls:
                getattr(pipe, name)(*args, **kwargs)
            results: builtins.list[Any] = await pipe.execute()
            return results
        finally:
            with contextlib.suppress(Exception):
                await pipe.reset()

    async def run_chains(self, client: Any) -> builtins.list[Any]:
        results: builtins.list[Any] = [None] * len(self.calls)
        chains: dict[object, builtins.list[int]] = {}
        for at, (chain, *_) in enumerate(self.calls):
            chains.setdefault(chain, []).append(at)

        async def run(ats: builtins.list[int]) -> None:
            for at in ats:
                _, name, args, kwargs = self.calls[at]
                results[at] = await getattr(client, name)(*args, **kwargs)

        await asyncio.gather(*(run(ats) for ats in chains.values()))
        return results
