"""The offline engine: Silero VAD, segmenter, inference scheduler and faster-whisper decoder."""
