"""`tutor doctor`: what is configured, what is reachable, in plain words. Never prints a key."""

from __future__ import annotations

import argparse
import importlib.util
import urllib.request

from tutor.settings import Settings, get_settings

OK, WARN, FAIL = "✓", "!", "✗"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=3.0, help="连通性检查的超时秒数")


def _reachable(url: str, timeout: float, headers: dict | None = None) -> str | None:
    """None if the URL answers (any HTTP status counts as reachable), else the reason."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        urllib.request.urlopen(req, timeout=timeout)
        return None
    except urllib.error.HTTPError:
        return None
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"


def checks(settings: Settings, timeout: float = 3.0) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    from tutor.corpus import check_corpus

    entries, problems = check_corpus(settings.corpus_dir)
    rows.append((OK if not problems else WARN, "知识库",
                 f"{len(entries)} 个条目，位于 {settings.corpus_dir}" +
                 (f"；{len(problems)} 处问题，运行 `python -m ingest --check` 查看" if problems else "")))

    backend = settings.embedding_backend
    if backend == "hashing":
        rows.append((OK, "嵌入模型", "离线默认 hashing（无需下载模型，不依赖 torch）"))
    elif backend == "sentence-transformers":
        have = importlib.util.find_spec("sentence_transformers") is not None
        rows.append((OK if have else FAIL, "嵌入模型",
                     f"sentence-transformers: {settings.embedding_model or '(未设置模型)'}" +
                     ("" if have else "；未安装，运行 pip install 'llm-interview-tutor[embeddings]'")))
    else:
        rows.append((OK, "嵌入模型", f"{backend}: {settings.embedding_model}"))

    if settings.chroma_url:
        url = settings.chroma_url.rstrip("/")
        url = url if "://" in url else f"http://{url}"
        err = _reachable(f"{url}/api/v2/heartbeat", timeout)
        rows.append((OK if err is None else FAIL, "向量库",
                     f"Chroma 服务器 {settings.chroma_url}" + ("" if err is None else f" 无法连接（{err}）")))
    else:
        rows.append((OK, "向量库", f"内置 Chroma，数据目录 {settings.chroma_dir}"))

    if not settings.llm_enabled:
        rows.append((WARN, "大模型", "未配置：离线模式（问答用知识库原文，评分用离线评分器）。"
                                    "设置 TUTOR_LLM_MODEL 和 TUTOR_LLM_BASE_URL 启用"))
    else:
        base = (settings.llm_base_url or "https://api.openai.com/v1").rstrip("/")
        headers = {}
        if settings.llm_api_key:
            headers["Authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
        err = _reachable(f"{base}/models", timeout, headers)
        rows.append((OK if err is None else FAIL, "大模型",
                     f"{settings.describe_llm()}" + ("" if err is None else f" 无法连接（{err}）")))
    rows.append((OK, "数据目录", str(settings.data_dir)))
    return rows


def run(args: argparse.Namespace) -> int:
    rows = checks(get_settings(), timeout=args.timeout)
    for mark, name, text in rows:
        print(f"{mark} {name}: {text}")
    return 1 if any(mark == FAIL for mark, _, _ in rows) else 0
