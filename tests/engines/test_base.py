"""The engine interface's event hand-off: `EventOutbox` read through `events()`, or pushed to a sink."""

from __future__ import annotations

from voxrelay.engines.base import EngineEvent, EventOutbox, InterimResult, SpeechStarted


class _Sink:
    def __init__(self) -> None:
        self.seen: list[tuple[str, EngineEvent | None]] = []

    def on_event(self, event: EngineEvent) -> None:
        self.seen.append(("queued", event))

    async def on_event_now(self, event: EngineEvent) -> None:
        self.seen.append(("now", event))

    def on_end(self) -> None:
        self.seen.append(("end", None))


async def test_events_read_in_order_until_the_end() -> None:
    outbox, first, second = EventOutbox(), SpeechStarted(0.1), InterimResult("hi", 0.0, 0.5)
    outbox.put(first)
    await outbox.put_now(second)  # without a sink: queued like any other
    outbox.end()
    assert [event async for event in outbox.events()] == [first, second]


async def test_a_sink_gets_what_was_queued_first_then_each_event_as_it_comes() -> None:
    outbox, sink = EventOutbox(), _Sink()
    early, late, later = SpeechStarted(0.1), InterimResult("a", 0.0, 0.5), InterimResult("ab", 0.0, 1.0)
    outbox.put(early)
    outbox.push_to(sink)
    await outbox.put_now(late)  # the stream's reader: the sink may send it at once
    outbox.put(later)  # a timer's event: queued by the sink
    outbox.end()
    assert sink.seen == [("queued", early), ("now", late), ("queued", later), ("end", None)]


def test_an_end_before_the_sink_comes_is_delivered_to_it() -> None:
    outbox, sink = EventOutbox(), _Sink()
    outbox.end()
    outbox.push_to(sink)
    assert sink.seen == [("end", None)]
