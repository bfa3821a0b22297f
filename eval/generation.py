"""Generation quality of the RAG chat, judged by an LLM: faithfulness, answer relevance, context recall.

For each answerable query of the chosen split (first N by file order, deterministic), a fresh
`tutor.chat.ChatSession` (the public chat API, so the figures describe what users get) answers the
question; the retrieved context is what that session searched (`retriever.search(reply.query)`).
A judge model (the same endpoint, temperature 0, Chinese prompts, JSON mode) then scores:

- faithfulness: the answer split into atomic claims, each checked against the retrieved context;
  score = supported claims / claims (RAGAS-style). Catches answers that add unsupported facts.
- answer relevance: 0-10, does the answer address the question directly and completely
  (correctness is not judged here; that is faithfulness' job). Reported as score / 10.
- context recall: the key points (`### 要点`) of the labelled entry, each checked for support in
  the retrieved context; score = attributed points / points. It measures retrieval through the
  judge's eyes, so it complements Recall@k (which only checks the entry id).

Everything runs `runs` times (default 3): the answer is re-generated at the user's temperature and
re-judged, and the report gives the mean over runs with the standard deviation and range across
runs, so one lucky sample is not mistaken for quality. Trade-offs: LLM judges are biased towards
fluent and long answers and the scores depend on the judge model (name it when quoting figures);
context is cut to CONTEXT_CHARS per entry to keep judge prompts bounded, so a fact deep in a long
answer can be judged unsupported. Offline (no LLM configured), the evaluation is skipped with a
message rather than faked.
"""

from __future__ import annotations

import statistics
import time

from eval.queries import LabelledQuery

CONTEXT_CHARS = 1500
MAX_CLAIMS = 12
SKIP_MESSAGE = ("未配置大模型（设置 TUTOR_LLM_MODEL 与 TUTOR_LLM_BASE_URL / TUTOR_LLM_API_KEY），"
                "跳过生成质量评测（忠实度、答案相关性、上下文召回需要大模型裁判）。")

JUDGE_SYSTEM = ("你是严格、客观的评测员，负责评估一个检索增强问答系统。只根据给出的材料判断，不使用材料以外的知识。"
                "只输出一个 JSON 对象，不要输出其他文字。")

FAITHFULNESS_PROMPT = """【参考资料】
{context}

【待核查的回答】
{answer}

任务：把回答拆成独立、可核查的事实陈述（最多 {max_claims} 条，忽略客套话和引用标记），逐条判断它能否由参考资料直接支持或合理推出。
输出 JSON：{{"claims": [{{"claim": "陈述", "supported": true 或 false}}]}}"""

RELEVANCE_PROMPT = """【问题】
{question}

【回答】
{answer}

任务：评价回答是否直接、完整地回应了问题（只看是否答非所问、是否遗漏问题的关键部分，不判断事实对错）。
0 分 = 完全答非所问，10 分 = 直接且完整地回答了问题的每个部分。
输出 JSON：{{"score": 0 到 10 的整数, "reason": "一句话理由"}}"""

RECALL_PROMPT = """【参考要点】
{points}

【检索到的资料】
{context}

任务：对每条参考要点，判断检索到的资料中是否包含支持它的内容。
输出 JSON：{{"points": [{{"index": 要点编号, "attributed": true 或 false}}]}}"""


def _context_text(entries) -> str:
    if not entries:
        return "（无：检索没有找到相关条目）"
    parts = []
    for n, e in enumerate(entries, 1):
        body = e.answer if len(e.answer) <= CONTEXT_CHARS else e.answer[:CONTEXT_CHARS] + "……"
        parts.append(f"[{n}] {e.question}\n{body}")
    return "\n\n".join(parts)


def _bool(v) -> bool:
    return v is True or (isinstance(v, str) and v.strip().lower() in ("true", "yes", "是", "1"))


def judge_faithfulness(judge, context: str, answer: str) -> float | None:
    obj = judge.complete_json([
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": FAITHFULNESS_PROMPT.format(context=context, answer=answer, max_claims=MAX_CLAIMS)},
    ])
    claims = [c for c in obj.get("claims", []) if isinstance(c, dict)][:MAX_CLAIMS]
    return sum(_bool(c.get("supported")) for c in claims) / len(claims) if claims else None


def judge_relevance(judge, question: str, answer: str) -> float | None:
    obj = judge.complete_json([
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": RELEVANCE_PROMPT.format(question=question, answer=answer)},
    ])
    try:
        return min(max(float(obj.get("score")), 0.0), 10.0) / 10.0
    except (TypeError, ValueError):
        return None


def judge_context_recall(judge, key_points: list[str], context: str) -> float | None:
    if not key_points:
        return None
    points = "\n".join(f"{i}. {p}" for i, p in enumerate(key_points, 1))
    obj = judge.complete_json([
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": RECALL_PROMPT.format(points=points, context=context)},
    ])
    verdicts = {}
    for item in obj.get("points", []):
        if isinstance(item, dict) and isinstance(item.get("index"), int) and 1 <= item["index"] <= len(key_points):
            verdicts[item["index"]] = _bool(item.get("attributed"))
    return sum(verdicts.values()) / len(key_points)


def _spread(values: list[float]) -> dict:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "std": None, "min": None, "max": None, "runs": 0}
    return {"mean": round(statistics.fmean(vals), 4), "std": round(statistics.pstdev(vals), 4),
            "min": round(min(vals), 4), "max": round(max(vals), 4), "runs": len(vals)}


METRICS = ("faithfulness", "answer_relevance", "context_recall")


def evaluate_generation(settings, corpus, queries: list[LabelledQuery], *, runs: int = 3, limit: int = 20,
                        retriever=None, judge_model: str | None = None) -> dict:
    """Mean over `runs` repetitions of the three judged metrics, with their spread across runs."""
    if not settings.llm_enabled:
        return {"skipped": SKIP_MESSAGE}
    from tutor.chat import ChatSession
    from tutor.llm import LLMError, get_llm
    from tutor.retriever import load_retriever

    retriever = retriever or load_retriever(settings, corpus=corpus)
    llm = get_llm(settings)
    judge_settings = settings.model_copy(update={"llm_temperature": 0.0, **({"llm_model": judge_model} if judge_model else {})})
    judge = get_llm(judge_settings)
    chosen = [q for q in queries if q.answerable][:limit]
    per_run: list[dict[str, float | None]] = []
    per_query: dict[str, dict[str, list]] = {q.text: {m: [] for m in METRICS} for q in chosen}
    errors: list[str] = []
    started = time.perf_counter()
    for run in range(runs):
        sums: dict[str, list[float]] = {m: [] for m in METRICS}
        for q in chosen:
            session = ChatSession(retriever, llm, k=settings.retrieval_k, history_chars=settings.chat_history_chars)
            reply = session.ask(q.text)
            text = reply.text  # runs the whole turn
            if reply.error is not None or reply.mode != "llm":
                errors.append(f"run {run + 1}「{q.text}」: {reply.error.message if reply.error else reply.mode}")
                continue
            answer = session.history[-1].answer if session.history else text
            result = retriever.search(reply.query, k=settings.retrieval_k)
            context = _context_text([h.entry for h in result.hits] if result.relevant else [])
            entry = corpus.get(q.primary)
            try:
                scores = {
                    "faithfulness": judge_faithfulness(judge, context, answer),
                    "answer_relevance": judge_relevance(judge, q.text, answer),
                    "context_recall": judge_context_recall(judge, entry.key_points if entry else [], context),
                }
            except LLMError as exc:
                errors.append(f"run {run + 1}「{q.text}」裁判调用失败: {exc.message}")
                continue
            for m, v in scores.items():
                per_query[q.text][m].append(v)
                if v is not None:
                    sums[m].append(v)
        per_run.append({m: (statistics.fmean(v) if v else None) for m, v in sums.items()})
    unstable = []
    for text, vals in per_query.items():
        f = [v for v in vals["faithfulness"] if v is not None]
        if len(f) >= 2 and max(f) - min(f) >= 0.3:
            unstable.append({"query": text, "faithfulness": [round(v, 3) for v in f]})
    return {
        "model": llm.describe(), "judge": judge.describe(), "judge_temperature": 0.0,
        "answer_temperature": settings.llm_temperature, "runs": runs, "questions": len(chosen),
        "metrics": {m: _spread([r[m] for r in per_run]) for m in METRICS},
        "per_run": [{m: (round(v, 4) if v is not None else None) for m, v in r.items()} for r in per_run],
        "unstable_questions": unstable[:10], "errors": errors[:20], "seconds": round(time.perf_counter() - started, 1),
    }
