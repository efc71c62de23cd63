"""The server over Streamable HTTP for a team: who is calling (`auth.py`, `callers.py`) and serving (`http.py`)."""
