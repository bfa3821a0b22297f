"""Labelled query sets: the file format, loading with line-numbered errors, and the dev/test split.

Format (JSON lines, UTF-8, one object per line; blank lines and lines starting with `#` are skipped):

    {"query": "点积算完为啥还要缩放", "relevant": ["attention-scaling"], "split": "dev", "style": "colloquial"}

- `query` (str, required): the text as a candidate would type it.
- `relevant` (required): the entry ids that answer it, best first, as a list (binary relevance:
  every id has gain 1), or an object `{"id": grade}` with grades >= 1 (graded relevance for nDCG).
  An empty list means the corpus cannot answer the query: the retriever should abstain.
- `split` (optional): "dev" or "test". Missing = computed by `split_for` below.
- `style` (optional): colloquial | mixed | english | keyword | typo | interviewer (for breakdowns).

The split is by ENTRY, not by query: a query belongs to the split of its primary (first / highest-
graded) relevant entry, and that split is a pure function of the entry id (SHA-1, even -> dev). So
every phrasing of one entry lands on the same side, tuning on dev never sees how a test entry is
asked, and an entry added later is assigned without touching existing labels. Unanswerable queries
are split by a hash of their text. Trade-off: the halves are only about 50/50 and a topic can be
uneven across them; in exchange nothing depends on file order or on the corpus at labelling time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_QUERIES = Path(__file__).parent / "data" / "queries.jsonl"
SPLITS = ("dev", "test")
STYLES = ("colloquial", "mixed", "english", "keyword", "typo", "interviewer", "misconception")


class QueryFileError(ValueError):
    """A malformed query file; the message lists every problem as `path:line: message`."""


def _parity_split(key: str) -> str:
    return "dev" if int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) % 2 == 0 else "test"


def split_for_entry(entry_id: str) -> str:
    return _parity_split(entry_id)


def split_for(query: str, relevant: dict[str, float]) -> str:
    """The documented split rule: by the primary relevant entry, or by text if unanswerable."""
    if relevant:
        return split_for_entry(primary_entry(relevant))
    return _parity_split("unanswerable:" + query.strip())


def primary_entry(relevant: dict[str, float]) -> str:
    """Highest grade first; among equal grades the one listed first."""
    best = max(relevant.values())
    return next(eid for eid, g in relevant.items() if g == best)


@dataclass
class LabelledQuery:
    text: str
    relevant: dict[str, float]  # entry id -> gain (1 for binary labels); insertion order = listed order
    split: str
    style: str = ""
    line: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def answerable(self) -> bool:
        return bool(self.relevant)

    @property
    def primary(self) -> str | None:
        return primary_entry(self.relevant) if self.relevant else None

    def to_json(self) -> dict:
        rel = list(self.relevant) if set(self.relevant.values()) <= {1.0} else dict(self.relevant)
        out = {"query": self.text, "relevant": rel, "split": self.split}
        if self.style:
            out["style"] = self.style
        return out


def _parse_relevant(value) -> dict[str, float]:
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return {v: 1.0 for v in value}
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(g, (int, float)) and g >= 1
                                       for k, g in value.items()):
        return {k: float(g) for k, g in value.items()}
    raise ValueError("`relevant` 必须是条目 id 的列表，或 {id: 等级>=1} 的对象")


def parse_queries(text: str, source: str = "<queries>") -> list[LabelledQuery]:
    queries, problems = [], []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("每行必须是一个 JSON 对象")
            q = obj.get("query")
            if not isinstance(q, str) or not q.strip():
                raise ValueError("缺少非空的 `query`")
            if "relevant" not in obj:
                raise ValueError("缺少 `relevant`（不可回答的问题写空列表 []）")
            relevant = _parse_relevant(obj["relevant"])
            split = obj.get("split") or split_for(q, relevant)
            if split not in SPLITS:
                raise ValueError(f"`split` 必须是 dev 或 test，而不是 {split!r}")
            style = obj.get("style", "") or ""
            extra = {k: v for k, v in obj.items() if k not in ("query", "relevant", "split", "style")}
            queries.append(LabelledQuery(q.strip(), relevant, split, style, n, extra))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            problems.append(f"{source}:{n}: {exc}")
    if problems:
        raise QueryFileError("查询文件有问题 (bad query file):\n" + "\n".join(problems[:30]))
    return queries


def load_queries(path: Path | str = DEFAULT_QUERIES) -> list[LabelledQuery]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise QueryFileError(f"读不到查询文件 {path}: {exc}") from exc
    return parse_queries(text, str(path))


def select(queries: list[LabelledQuery], split: str) -> list[LabelledQuery]:
    return list(queries) if split == "all" else [q for q in queries if q.split == split]


def check_against_corpus(queries: list[LabelledQuery], entry_ids: set[str]) -> tuple[list[LabelledQuery], list[str]]:
    """Drop queries that name entries the corpus does not have (renamed or removed); say which."""
    kept, problems = [], []
    for q in queries:
        unknown = [eid for eid in q.relevant if eid not in entry_ids]
        if unknown:
            problems.append(f"line {q.line}: 未知条目 {', '.join(unknown)}（查询「{q.text}」已跳过）")
        else:
            kept.append(q)
    return kept, problems


def label_coverage(queries: list[LabelledQuery], entry_ids: set[str], minimum: int = 2) -> list[str]:
    """Entries with fewer than `minimum` labelled queries naming them (new entries need labels)."""
    counts: dict[str, int] = {}
    for q in queries:
        for eid in q.relevant:
            counts[eid] = counts.get(eid, 0) + 1
    return sorted(eid for eid in entry_ids if counts.get(eid, 0) < minimum)
