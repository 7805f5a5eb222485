"""rtscore.tasks.cancel_and_wait: tasks end, their errors surface, and a cancel of the caller is kept."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from rtscore.tasks import cancel_and_wait


async def _slow_to_stop(cleanup_s: float, ended: list[str]) -> None:
    """Runs until cancelled, then takes `cleanup_s` to clean up (a channel closing, say)."""
    try:
        await asyncio.Event().wait()
    finally:
        await asyncio.sleep(cleanup_s)
        ended.append("cleaned up")


async def test_cancelled_tasks_have_ended_when_it_returns() -> None:
    ended: list[str] = []
    tasks = [asyncio.create_task(_slow_to_stop(0.01, ended)) for _ in range(3)]
    await asyncio.sleep(0)
    await cancel_and_wait(*tasks, None)
    assert ended == ["cleaned up"] * 3
    assert all(t.cancelled() for t in tasks)


async def test_an_error_a_task_ended_with_is_raised() -> None:
    async def fails() -> None:
        raise OSError("disk gone")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)  # it has failed before anyone cancels it
    with pytest.raises(OSError, match="disk gone"):
        await cancel_and_wait(task)


async def test_a_cancel_of_the_caller_while_it_waits_reaches_the_caller() -> None:
    ended: list[str] = []
    steps: list[str] = []

    async def closer(task: asyncio.Task[None], wait: object) -> None:
        await wait  # type: ignore[misc]
        steps.append("went on after the wait")  # what a swallowed cancel lets happen

    async def suppressing(task: asyncio.Task[None]) -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    for waiting, swallowed in ((cancel_and_wait, False), (suppressing, True)):
        steps.clear()
        child = asyncio.create_task(_slow_to_stop(0.2, ended))
        await asyncio.sleep(0)
        outer = asyncio.create_task(closer(child, waiting(child)))
        await asyncio.sleep(0.05)  # the child is cleaning up; the closer waits for it
        outer.cancel()
        if swallowed:  # the old pattern: the cancel is lost and the closer carries on
            await outer
            assert steps == ["went on after the wait"]
            assert not outer.cancelled()
        else:
            with pytest.raises(asyncio.CancelledError):
                await outer
            assert steps == []
            assert outer.cancelled()
        assert child.done()
