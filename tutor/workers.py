"""Tokenising and embedding in worker processes, for large corpora.

Tokenising mixed Chinese/English text is pure Python (jieba, the glossary scan): the hashing embedder
costs a few ms a chunk and BM25 a few ms an entry, so a 100x corpus (~80,000 chunks, ~18,000 entries)
would keep one core busy for minutes. `embed_batches` / `tokenize_batches` spread batches over worker
processes and yield the results *in order*, so ingest stores batch i while the workers embed batches
i+1..i+W (its "additions first" order is unchanged), and the retriever fills its token cache.

Design: each worker is `python -m tutor.workers JOB PARAM`, fed length-prefixed pickles over its
stdin and answering with one result per batch (float32 array / token lists) on its stdout. Not `multiprocessing`: its `spawn`
start method re-imports the caller's `__main__` (a user script without a main guard would start
ingesting again inside every worker), and `fork` copies a process that already runs Chroma's
native threads. A worker has at most one batch outstanding, so neither side can block the other
on a full pipe. Trade-offs: ~1 s start-up per worker (imports, jieba's dictionary), so callers
use it only above a size threshold; the vectors are bit-identical to the in-process ones.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
_LEN = struct.Struct("<Q")


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LEN.pack(len(data)))
    stream.write(data)
    stream.flush()


def _recv(stream):
    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        return None
    (size,) = _LEN.unpack(head)
    return pickle.loads(stream.read(size))


def embed_batches(dim: int, batches: list[list[str]], workers: int) -> Iterator[np.ndarray]:
    """Hashing-embedder vectors (float32, one row per text) for each batch of texts, in order."""
    return _map("embed", dim, batches, workers)


def tokenize_batches(batches: list[list[str]], workers: int) -> Iterator[list[list[str]]]:
    """`tutor.text.tokenize` of each text, for each batch of texts, in order."""
    return _map("tokenize", 0, batches, workers)


def _map(job: str, param: int, batches: list[list[str]], workers: int):
    if not batches:
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
    procs = [subprocess.Popen([sys.executable, "-m", "tutor.workers", job, str(param)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env, cwd=_ROOT)
             for _ in range(max(1, min(workers, len(batches))))]
    try:
        w = len(procs)
        for i, batch in enumerate(batches[:w]):
            _send(procs[i].stdin, batch)
        for i in range(len(batches)):
            proc = procs[i % w]
            result = _recv(proc.stdout)
            if result is None:
                raise RuntimeError(f"{job} worker exited with code {proc.wait()}")
            if i + w < len(batches):
                _send(proc.stdin, batches[i + w])  # this worker is idle now: give it the next batch
            yield result
    finally:
        for proc in procs:
            try:
                proc.stdin.close()
            except OSError:
                pass
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _worker(job: str, param: int) -> None:
    if job == "embed":
        from tutor.embeddings import HashingEmbedder

        embedder = HashingEmbedder(param)

        def run(texts):
            return np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    elif job == "tokenize":
        from tutor.text import tokenize

        def run(texts):
            return [tokenize(t) for t in texts]
    else:
        raise SystemExit(f"unknown job {job!r}")
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while (texts := _recv(stdin)) is not None:
        _send(stdout, run(texts))


if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]))
