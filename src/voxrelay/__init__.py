"""voxrelay: a streaming dictation gateway (Deepgram's cloud or an offline faster-whisper engine)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
