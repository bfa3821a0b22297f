"""Embedding in worker processes for large offline ingests.

The hashing embedder is pure Python (a few ms a chunk, most of it tokenising), so one core embeds
~250 chunks a second; a 100x corpus (~80,000 chunks) would take minutes on one core. `embed_batches`
spreads the batches over worker processes and yields the vectors *in order*, so the caller stores
batch i while the workers embed batches i+1..i+W (ingest's "additions first" order is unchanged).

Design: each worker is `python -m ingest.parallel DIM`, fed length-prefixed pickles over its stdin
and answering with one float32 array per batch on its stdout. Not `multiprocessing`: its `spawn`
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
    """Vectors (float32, one row per text) for each batch of texts, in order."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
    procs = [subprocess.Popen([sys.executable, "-m", "ingest.parallel", str(dim)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env, cwd=_ROOT)
             for _ in range(max(1, min(workers, len(batches))))]
    try:
        w = len(procs)
        for i, batch in enumerate(batches[:w]):
            _send(procs[i].stdin, batch)
        for i in range(len(batches)):
            proc = procs[i % w]
            vectors = _recv(proc.stdout)
            if vectors is None:
                raise RuntimeError(f"embedding worker exited with code {proc.wait()}")
            if i + w < len(batches):
                _send(proc.stdin, batches[i + w])  # this worker is idle now: give it the next batch
            yield vectors
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


def _worker(dim: int) -> None:
    from tutor.embeddings import HashingEmbedder

    embedder = HashingEmbedder(dim)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while (texts := _recv(stdin)) is not None:
        _send(stdout, np.asarray(embedder.embed_documents(texts), dtype=np.float32))


if __name__ == "__main__":
    _worker(int(sys.argv[1]))
