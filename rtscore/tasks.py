"""Stopping a server's own background tasks without swallowing a cancel of the code that stops them."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel `tasks` (None entries are skipped) and wait until each has ended.

    A task's own CancelledError is expected and dropped; any other error it ended with is raised once all
    have ended. A cancel of the caller while it waits reaches the caller: `with suppress(CancelledError):
    await task` would swallow that one too, and the caller would carry on as if it had not been asked to
    stop (a closing pool then waited for ever on a change that never came).
    """
    pending = [t for t in tasks if t is not None]
    for task in pending:
        task.cancel()
    # gather is cancelled with its caller whatever return_exceptions says
    results = await asyncio.gather(*pending, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            raise result
