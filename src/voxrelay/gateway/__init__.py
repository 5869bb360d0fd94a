"""The only socket code: the FastAPI app, the endpoints and the connection runner."""
