"""The floor: a bare keep-alive HTTP client with 10 threads fetching every document once.

No parsing, no storage, no diff: what fetching the documents from the stand-in costs by itself,
so a tool's wall time can be read as "floor + its own work". Prints one line, ``ok=N failed=M``.

    .venv/bin/python -m bench.keepalive_floor --base-url http://127.0.0.1:PORT --orgnrs FILE [--threads 10]
"""

from __future__ import annotations

import argparse
import http.client
import queue
import threading
from pathlib import Path
from urllib.parse import urlsplit


def fetch_all(base_url: str, paths: list[str], threads: int) -> tuple[int, int]:
    """(answered 200, anything else) over ``paths``, each thread on one persistent connection."""
    parts = urlsplit(base_url)
    work: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    for path in paths:
        work.put(parts.path.rstrip("/") + path)
    for _ in range(threads):
        work.put(None)
    counts = {"ok": 0, "failed": 0}
    lock = threading.Lock()

    def worker() -> None:
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        ok = failed = 0
        while (path := work.get()) is not None:
            try:
                connection.request("GET", path, headers={"Accept": "application/json"})
                response = connection.getresponse()
                response.read()
                ok, failed = (ok + 1, failed) if response.status == 200 else (ok, failed + 1)
            except (OSError, http.client.HTTPException):
                failed += 1
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        connection.close()
        with lock:
            counts["ok"] += ok
            counts["failed"] += failed

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return counts["ok"], counts["failed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument(
        "--orgnrs", type=Path, required=True, help="a file with one organisation number a line"
    )
    parser.add_argument("--threads", type=int, default=10)
    arguments = parser.parse_args()
    orgnrs = arguments.orgnrs.read_text(encoding="utf-8").split()
    paths = [path for orgnr in orgnrs for path in (f"/enheter/{orgnr}", f"/enheter/{orgnr}/roller")]
    ok, failed = fetch_all(arguments.base_url, paths, arguments.threads)
    print(f"ok={ok} failed={failed}")


if __name__ == "__main__":
    main()
