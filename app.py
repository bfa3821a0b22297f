"""Entry point: `python app.py` builds or updates the index, then serves the Gradio UI.

Binds 127.0.0.1 by default. Serving on another interface (e.g. `--host 0.0.0.0`) exposes the tutor
to the network, so it requires credentials: TUTOR_AUTH="user:password[,user2:password2]".
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def parse_auth(value: str | None) -> list[tuple[str, str]]:
    pairs = []
    for item in (value or "").split(","):
        user, sep, password = item.strip().partition(":")
        if sep and user and password:
            pairs.append((user, password))
    return pairs


def port_in_use(host: str, port: int) -> bool:
    """Whether `port` on `host` is taken (another tutor already running, most likely)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        # as the server will: a port left in TIME_WAIT by a tutor that just stopped is free to use
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="大模型面试辅导 Web 界面")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="端口（默认 TUTOR_PORT 或 7860）")
    args = parser.parse_args(argv)
    if args.port is None:
        try:
            args.port = int(os.environ.get("TUTOR_PORT") or 7860)
        except ValueError:
            parser.error(f"TUTOR_PORT 应为端口号，当前是 {os.environ['TUTOR_PORT']!r}")

    auth = parse_auth(os.environ.get("TUTOR_AUTH"))
    if args.host not in ("127.0.0.1", "localhost", "::1") and not auth:
        print(f"拒绝在 {args.host} 上无认证地提供服务：请设置 TUTOR_AUTH=\"用户名:密码\" 后重试。", file=sys.stderr)
        return 2

    # before the index is built: a second `python app.py` should say so at once, not after a minute
    if port_in_use(args.host, args.port):
        print(f"端口 {args.port} 已被占用：可能已经有一个辅导程序在运行（打开 http://{args.host}:{args.port} ），"
              f"或换一个端口：python app.py --port {args.port + 1}（或设置 TUTOR_PORT）。", file=sys.stderr)
        return 2

    from ingest.pipeline import ensure_index
    from tutor.settings import get_settings

    settings = get_settings()
    print("正在检查/建立知识库索引 (building the index on first start)...", flush=True)
    print(ensure_index(settings, progress=True).summary(), flush=True)

    from tutor.retriever import load_retriever
    from tutor.ui import build_app, launch_options

    app = build_app(settings, load_retriever(settings))
    app.queue(default_concurrency_limit=8, max_size=64).launch(server_name=args.host, server_port=args.port,
                                                               auth=auth or None, **launch_options())
    return 0


if __name__ == "__main__":
    sys.exit(main())
