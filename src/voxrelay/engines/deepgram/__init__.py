"""The Deepgram engine: the only importer of deepgram-sdk."""
