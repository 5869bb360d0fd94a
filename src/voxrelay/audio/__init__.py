"""Audio at the edge: PCM checks and resampling (`pcm`), container decoding with PyAV (`container`)."""
