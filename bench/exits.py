"""How soon the server is gone when asked to stop, measured against the README's promises. Used by `bench/run.py`
(`--only exits` runs just these rows).

The tests assert that the server exits, with no traceback, and well inside their own generous bound; the seconds
the README promises are measured here, on the same paths: a plain signal, stdin closed after a cancelled call, and
both after a FIFO was swapped in and out under the name of an attachment.
"""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from tests.e2e.raw import RawServer
from tests.support import exchange_names, wait_until

from bench.sections import Bench, median

__all__ = ["exit_after_fifo_swap", "exit_latency"]

SIGTERM_WITHIN, OTHERWISE_WITHIN = 2.0, 1.0  # seconds: the README's promises (SIGTERM; Ctrl-C and stdin closed)
FIFO_CALLS = 20  # calls made while the name flips between a picture and a FIFO, as in test_lifecycle.py


def _rows(bench: Bench, took: dict[str, list[float]], promises: dict[str, float], repeat: int) -> None:
    for name, values in took.items():
        worst = max(values)
        bench.row(
            f"exit on {name}",
            median(values),
            "s",
            None,
            f"within {promises[name]:g} s",
            worst <= promises[name],
            f"slowest of {repeat}: {worst:.2f} s",
        )


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def exit_latency(bench: Bench, repeat: int = 3) -> None:
    """How soon the server is gone: on Ctrl-C (SIGINT), on SIGTERM, and when stdin closes with nothing owed (a
    call the client cancelled first), the promises the README makes (1 s, 2 s, 1 s)."""
    work = bench.work / "exits"
    work.mkdir(exist_ok=True)
    took: dict[str, list[float]] = {"SIGINT": [], "SIGTERM": [], "stdin closed after a cancel": []}
    for i in range(repeat):
        for name in took:
            with RawServer(work, stderr_name=f"exit-{i}.log", OPENROUTER_BASE_URL=bench.fake.base_url) as server:
                server.initialize()
                if name.startswith("SIG"):
                    took[name].append(server.signal(getattr(signal, name)))
                    continue
                bench.fake.release.clear()
                request_id = server.start_call("ask", {"prompt": "Hold on?"})
                wait_until(bench.fake.chat_requests, what="the call reaching the fake")
                server.cancel(request_id)
                took[name].append(_timed(server.close_stdin))
                bench.fake.release.set()
                bench.fake.clear()
    promises = {"SIGINT": OTHERWISE_WITHIN, "SIGTERM": SIGTERM_WITHIN, "stdin closed after a cancel": OTHERWISE_WITHIN}
    _rows(bench, took, promises, repeat)


def _fifo_swap_calls(server: RawServer, root: Path) -> None:
    """`FIFO_CALLS` asks attaching a name that flips between a picture and a FIFO, then one naming the FIFO itself:
    each answered or refused (the server never blocks on the FIFO), as the lifecycle test checks."""
    image, pipe = root / "swap.png", root / "pipe.png"
    Image.new("RGB", (16, 12), (10, 120, 200)).save(image, format="PNG")
    os.mkfifo(pipe)
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            exchange_names(image, pipe)

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    try:
        for _ in range(FIFO_CALLS):
            server.call("ask", {"prompt": "Look.", "attachments": [str(image)]}, seconds=30)
    finally:
        stop.set()
        swapper.join(5)
    fifo = image if stat.S_ISFIFO(os.lstat(image).st_mode) else pipe
    refused = server.call("ask", {"prompt": "Look.", "attachments": [str(fifo)]}, seconds=30)
    assert refused.get("isError") and "not a regular file" in refused["content"][0]["text"], refused


def exit_after_fifo_swap(bench: Bench, repeat: int = 3) -> None:
    """The exit on SIGTERM and on stdin closed right after the FIFO swap (`_fifo_swap_calls`): the README's 2 s and
    1 s, which the lifecycle tests only bound loosely (they must not depend on the machine's speed)."""
    work = bench.work / "fifo-exits"
    work.mkdir(exist_ok=True)
    names = ("SIGTERM after a FIFO swapped in for an attachment", "stdin closed after a FIFO swapped in")
    took: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeat):
        for name in names:
            run = work / f"{i}-{name.split()[0]}"
            root = run / "files"
            root.mkdir(parents=True)
            env = {"OPENROUTER_BASE_URL": bench.fake.base_url, "OPENROUTER_FILE_ROOTS": str(root)}
            with RawServer(run, **env) as server:
                server.initialize()
                _fifo_swap_calls(server, root)
                stop = (lambda: server.signal(signal.SIGTERM)) if name.startswith("SIG") else server.close_stdin
                took[name].append(_timed(stop))
                assert "Traceback" not in server.stderr, server.stderr[-2000:]
            bench.fake.clear()
    _rows(bench, took, {names[0]: SIGTERM_WITHIN, names[1]: OTHERWISE_WITHIN}, repeat)
