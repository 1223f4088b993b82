"""Eager start of a coroutine as a task (Python 3.11 has no ``eager_task_factory``; 3.12 does the same in C).

:func:`start_eager` runs the coroutine's first step *now*, in the caller's loop turn, as the new task (the
task is made the loop's current task for that step, so ``asyncio.current_task()``, ``asyncio.timeout`` and
cancellation see it), and the task then drives the rest from wherever the coroutine suspended. Used by the
pipeline's same-turn hand-over (issue #6, seventh session): a pending transaction's engine stage, strategy and
executor run in the loop turn that read its frame, up to the signed ``eth_callBundle`` on the wire.
"""

from __future__ import annotations

import asyncio
from asyncio.tasks import _enter_task, _leave_task
from collections.abc import Coroutine
from typing import Any

__all__ = ["start_eager"]

_NOT_YET = object()


class _Resume:
    """Hands what the coroutine yielded (a future it waits for, or ``None`` for a bare yield) to the task."""

    __slots__ = ("what",)

    def __init__(self, what: Any) -> None:
        self.what = what

    def __await__(self) -> Any:
        return (yield self.what)


class _Eager:
    __slots__ = ("coro", "yielded", "result", "exc")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro
        self.yielded: Any = None
        self.result: Any = _NOT_YET
        self.exc: BaseException | None = None

    def first_step(self) -> None:
        try:
            self.yielded = self.coro.send(None)
        except StopIteration as stop:
            self.result = stop.value
        except BaseException as exc:  # noqa: BLE001 - re-raised by the task, as a task would
            self.exc = exc

    async def rest(self) -> Any:
        if self.exc is not None:
            exc, self.exc = self.exc, None
            raise exc
        if self.result is not _NOT_YET:
            return self.result
        coro, yielded = self.coro, self.yielded
        while True:
            try:
                await _Resume(yielded)
            except BaseException as exc:  # noqa: BLE001 - thrown into the coroutine where it waits (cancel)
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                yielded = coro.send(None)
            except StopIteration as stop:
                return stop.value


def start_eager(coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
    """A task for ``coro`` whose first step has already run (up to its first real suspension, or to its end)
    when this returns. Call from inside the running loop (a task or a callback). Exceptions of that first step
    are the task's, as with ``create_task``."""
    loop = asyncio.get_running_loop()
    e = _Eager(coro)
    task = loop.create_task(e.rest(), name=name)
    cur = asyncio.current_task(loop)
    if cur is not None:
        _leave_task(loop, cur)
    _enter_task(loop, task)
    try:
        e.first_step()
    finally:
        _leave_task(loop, task)
        if cur is not None:
            _enter_task(loop, cur)
    return task
