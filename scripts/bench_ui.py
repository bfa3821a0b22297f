"""Benchmark the web app's start-up: `python app.py` to the first HTTP 200, and its memory.

    python scripts/bench_ui.py              # 3 cold starts on a temp copy of an already-built index
    python scripts/bench_ui.py --runs 5 --json

What is measured, per run (the index is built once beforehand, so this is the everyday start):
- wall time from spawning `python app.py --port P` to the first HTTP 200 on `/`;
- CPU time the process used until then (user + system). On a busy machine the wall time grows with
  the load while the CPU time does not, so both are reported, with the load average;
- the moment the index check finished (its log line), to split start-up into "index check" and
  "UI imports + build + launch";
- RSS right after start, and after a first chat answer and a first interview question through
  `gradio_client` (when the lazily built backends are loaded).

The target in issue 10 is under 8 s to the first 200 on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_run(env: dict, workdir: Path, warm: bool) -> dict:
    port = free_port()
    log = workdir / f"app-{port}.log"
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], cwd=workdir, env=env,
                                stdout=fh, stderr=subprocess.STDOUT)
    index_done = None
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(log.read_text()[-2000:])
            if index_done is None and ("索引" in log.read_text(errors="replace").split("\n", 1)[-1]):
                index_done = time.perf_counter() - t0
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.02)
        out = {"start_s": round(time.perf_counter() - t0, 2), "cpu_s": round(cpu_seconds(proc.pid), 2),
               "index_check_s": round(index_done or float("nan"), 2), "rss_mb": round(rss_mb(proc.pid), 1)}
        if warm:
            from gradio_client import Client

            c = Client(f"http://127.0.0.1:{port}/", verbose=False)
            t = time.perf_counter()
            c.predict("为什么注意力要除以根号 d？", api_name="/chat")
            out["first_chat_s"] = round(time.perf_counter() - t, 2)
            t = time.perf_counter()
            c.predict([], "不限", 1, 0, False, api_name="/interview_start")
            out["first_interview_s"] = round(time.perf_counter() - t, 2)
            out["rss_warm_mb"] = round(rss_mb(proc.pid), 1)
        return out
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        tmp = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TUTOR_", "OPENAI_"))}
        env.update(GRADIO_ANALYTICS_ENABLED="False", ANONYMIZED_TELEMETRY="False", HF_HUB_OFFLINE="1",
                   TUTOR_DATA_DIR=str(tmp / "data"), GRADIO_TEMP_DIR=str(tmp / "gradio"))
        subprocess.run([sys.executable, "-m", "ingest"], cwd=ROOT, env=env, check=True, capture_output=True)
        runs = [one_run(env, tmp, warm=(i == args.runs - 1)) for i in range(args.runs)]
        shutil.rmtree(tmp / "gradio", ignore_errors=True)
    summary = {"cpus": os.cpu_count(), "load_avg": [round(x, 2) for x in os.getloadavg()],
               "median_start_s": statistics.median(r["start_s"] for r in runs),
               "median_cpu_s": statistics.median(r["cpu_s"] for r in runs),
               "median_rss_mb": statistics.median(r["rss_mb"] for r in runs), "runs": runs}
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=1))
    else:
        for r in runs:
            print(r)
        print(f"{os.cpu_count()} CPUs, load average {summary['load_avg']}: median start-up {summary['median_start_s']} s "
              f"(CPU {summary['median_cpu_s']} s), RSS after start {summary['median_rss_mb']} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
