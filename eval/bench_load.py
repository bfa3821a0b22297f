"""Load test: N simulated users doing mock-interview turns through the app's gradio_client API.

`python -m eval.bench_load '{"url": ..., "users": [1, 8, 32], "seconds": 20}'` prints one JSON line.

Each user is a thread with its own `gradio_client.Client` (its own Gradio session, so its own
interview state), created before the clock starts. A user calls `/interview_start` (10 questions,
one follow-up each), then answers with `/interview_answer` until the interview ends (then starts a
new one) or the time is up; the answer is built from the question's entry (key points, partial, or
vague: the grader's work varies). Every call is timed; an exception or a reply without the expected
outputs is an error. Bounded: the run stops itself after `seconds` per level (calls in flight get
`call_timeout` seconds), and only ever talks to the 127.0.0.1 URL it is given.

Throughput is completed calls per second over the level's wall time; latency is per call (what one
user waits for a turn, queueing included). The app queues events (`default_concurrency_limit=8`,
`max_size=64` in app.py), so beyond 8 concurrent turns users wait in Gradio's queue rather than fail.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from urllib.parse import urlparse

from eval.bench_corpus import answer_for
from eval.bench_phases import latency

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _question_text(outputs) -> str:
    """The question Markdown output ("### 第 1/10 题：...") without its decoration."""
    text = str(outputs[1] or "")
    text = text.lstrip("#").strip()
    for sep in ("题：", "追问："):
        if sep in text:
            text = text.split(sep, 1)[1]
    return text.strip()


class User:
    def __init__(self, url: str, corpus, seed: int):
        from gradio_client import Client

        self.client = Client(url, verbose=False, download_files=False)
        self.by_question = {e.question: e for e in corpus.entries}
        self.entries = corpus.entries
        self.seed = seed
        self.question = ""
        self.started = False

    def _answer_text(self, i: int) -> str:
        entry = self.by_question.get(self.question) or self.entries[(self.seed * 31 + i) % len(self.entries)]
        return answer_for(entry, self.seed + i)

    def call(self, timeout: float, *args, api_name: str):
        return self.client.submit(*args, api_name=api_name).result(timeout=timeout)

    def run(self, deadline: float, record, timeout: float) -> None:
        i = 0
        while time.monotonic() < deadline:
            t = time.perf_counter()
            try:
                if not self.started:
                    out = self.call(timeout, [], "不限", 10, 1, False, api_name="/interview_start")
                else:
                    out = self.call(timeout, self._answer_text(i), False, api_name="/interview_answer")
                ok = isinstance(out, (list, tuple)) and len(out) >= 2
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none stops the run
                record((time.perf_counter() - t) * 1000, f"{type(exc).__name__}: {str(exc)[:200]}")
                self.started = False
                continue
            record((time.perf_counter() - t) * 1000, None if ok else f"unexpected outputs: {str(out)[:200]}")
            self.started = ok
            if ok:
                self.question = _question_text(out)
                finished = "面试已结束" in str(out[1]) or not self.question
                self.started = not finished
            i += 1


def run_level(url: str, corpus, n_users: int, seconds: float, call_timeout: float) -> dict:
    with ThreadPoolExecutor(max_workers=min(n_users, 32)) as pool:
        users = list(pool.map(lambda k: User(url, corpus, k), range(n_users)))
    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def record(ms: float, error: str | None) -> None:
        with lock:
            (errors.append(error) if error else times.append(ms))

    started = time.perf_counter()
    deadline = time.monotonic() + seconds
    with ThreadPoolExecutor(max_workers=n_users) as pool:
        futures = [pool.submit(u.run, deadline, record, call_timeout) for u in users]
        done, pending = wait(futures, timeout=seconds + call_timeout)
    wall = time.perf_counter() - started
    for u in users:
        try:
            u.client.close()
        except Exception:  # noqa: BLE001
            pass
    return {"users": n_users, "seconds": wall, "calls": len(times), "errors": len(errors),
            "error_samples": sorted(set(errors))[:3], "unfinished_users": len(pending),
            "throughput_per_s": len(times) / wall if wall else 0.0, **latency(times)}


def main(args: dict) -> dict:
    from tutor.corpus import load_corpus

    host = urlparse(args["url"]).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"load tests only run against 127.0.0.1, not {host}")
    corpus = load_corpus(Path(args["corpus"]), strict=False)
    # The app builds its grader on the first interview (or when a browser loads the page): one
    # warm-up call pays that before the clock starts, and is reported on its own.
    t = time.perf_counter()
    User(args["url"], corpus, 0).call(args.get("call_timeout", 60.0), [], "不限", 1, 0, False,
                                      api_name="/interview_start")
    first_call_s = time.perf_counter() - t
    levels = [run_level(args["url"], corpus, n, args["seconds"], args.get("call_timeout", 60.0))
              for n in args["users"]]
    return {"first_call_s": first_call_s, "levels": levels}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
