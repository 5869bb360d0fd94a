"""The Python client of a voxrelay gateway (docs/clients.md).

- `transcribe(path_or_bytes, url=..., api_key=None)` → `Transcript` (`.text`, `.segments`): the simple case,
  synchronous, for scripts and notebooks; `atranscribe` for async code.
- `async with connect(url, api_key=None, audio_format=..., **options) as stream:` → `LiveStream`:
  `await stream.send(pcm)`, `await stream.finalize()`, `await stream.stop()`, `async for message in stream`
  (the messages of `voxrelay.protocol.messages`).
- Every failure raises a `ClientError` (`AudioFileError`, `GatewayUnreachable`, `GatewayRefused`,
  `SessionError`) with a stable `code` and the server's `message`.
"""

from voxrelay.client.audio import load_audio, to_linear16
from voxrelay.client.errors import AudioFileError, ClientError, GatewayRefused, GatewayUnreachable, SessionError
from voxrelay.client.live import DEFAULT_URL, LiveStream, connect
from voxrelay.client.simple import Segment, Transcript, atranscribe, transcribe
from voxrelay.client.timed import StreamResult, stream_audio

__all__ = [
    "DEFAULT_URL",
    "AudioFileError",
    "ClientError",
    "GatewayRefused",
    "GatewayUnreachable",
    "LiveStream",
    "Segment",
    "SessionError",
    "StreamResult",
    "Transcript",
    "atranscribe",
    "connect",
    "load_audio",
    "stream_audio",
    "to_linear16",
    "transcribe",
]
