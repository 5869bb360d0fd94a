"""One connection's writer queue: its actions in order, whether one is being carried out, and back-pressure.

The connection runner (`gateway.connection`) puts every action the codec asks for here, and
ONE writer task takes them in order (`take`, then `done`). While the queue is empty and no
action is being carried out (`idle`), another of the connection's tasks may carry one out
itself, between `claim()` and `release()`: the writer waits meanwhile. That keeps the order
of a single writer and saves the task switch per relayed message that waking the writer
costs (docs/benchmarks.md, issue 17).

The reader waits on `room` before it reads more: it is cleared at `high_water` actions and
set again below half of it, so a client that sends faster than the engine takes audio is
slowed by TCP, not buffered without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque

from voxrelay.protocol.actions import Action, FeedAudio
from voxrelay.tasks import Wakeup

__all__ = ["WriterQueue"]


class WriterQueue:
    """The actions of one connection, for its one writer. Call order: `put` any time; the writer loops
    `take` -> carry it out -> `done`; any task may `claim`, carry out actions, `release` while `idle`."""

    def __init__(self, high_water: int = 256) -> None:
        self._items: deque[Action] = deque()
        self._high_water = high_water
        self._wake = Wakeup()  # the writer's (tasks.Wakeup: no loop lookup per wait, unlike asyncio.Event)
        self.room = Wakeup(is_set=True)  # the reader's: set while the queue is below the high-water mark
        self.busy = False  # an action is being carried out (by the writer, or a task that claimed it)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing being carried out: a task may `claim` the writer's turn."""
        return not self._items and not self.busy

    def put(self, actions: list[Action]) -> None:
        if actions:
            self._items.extend(actions)
            self._wake.set()
            if len(self._items) >= self._high_water:
                self.room.clear()

    def replace(self, action: Action) -> None:
        """Drop everything queued; `action` is next."""
        self._items.clear()
        self._items.append(action)
        self._wake.set()
        self.room.set()

    def drop_audio(self) -> None:
        """Drop the audio not yet fed (the key's quota is used up); the rest stays in order."""
        self._items = deque(action for action in self._items if not isinstance(action, FeedAudio))
        self.room.set()

    def wake(self) -> None:
        """Wake the writer, e.g. so it sees that its connection closed."""
        self._wake.set()

    async def take(self, closed: asyncio.Event) -> Action | None:
        """The writer's next action (the queue is `busy` until `done()`); None once `closed` is set and
        nothing is queued."""
        while not self._items or self.busy:
            # On Python 3.11, asyncio.wait_for (inside an engine's open) can swallow the cancel that
            # ends the writer when the client leaves just as the engine answers; the writer then
            # comes back here, and must not wait for actions that will never come.
            if closed.is_set():
                return None
            self._wake.clear()
            await self._wake.wait()
        action = self._items.popleft()
        if len(self._items) < self._high_water // 2:
            self.room.set()
        self.busy = True
        return action

    def done(self) -> None:
        """The writer carried out the action `take` gave it."""
        self.busy = False

    def claim(self) -> None:
        """Carry out actions from this task (only while `idle`); the writer waits until `release()`."""
        assert self.idle
        self.busy = True

    def release(self) -> None:
        self.busy = False
        if self._items:
            self._wake.set()
