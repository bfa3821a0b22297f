"""Corpora and workloads for the benchmark: the real corpus, synthetic Nx copies, queries, answers.

Synthetic growth corpora (`python -m eval.bench --growth`) are generated into a temp dir by every
run and never committed. Copy 0 is the real corpus; copy k (1..N-1) rewrites every topic file with

- ids renamed `id-sK` (in `- id:` lines and `→ id` follow-up links, so no link dangles), and
- a per-copy character substitution: ~10% of the corpus's Han characters map to other Han
  characters (a seeded permutation, applied with `str.translate`, so 100x is generated in seconds).

Trade-off: real growth brings new topics, not mutated copies; but the substitution gives every copy
its own words, bigrams and jieba segmentation (so BM25 vocabularies, postings and the hashing
embedder's features grow as they would), while the markdown structure, code fences and `$$`
formulas stay intact: the characters of the structural labels (`### 答案`, `- 难度:` ...) are never
substituted, and the ASCII text (ids, LaTeX, code) is left alone. Entries keep their size, so the
chunk count scales exactly with N, which is what a cost-against-size plot needs.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

from tutor.corpus import corpus_files

ROOT = Path(__file__).resolve().parents[1]
STRUCTURE_CHARS = set("别名答案要点追问来源难度标签主题")  # labels the loader keys on
SUBSTITUTED_SHARE = 0.10
_ID_REF = re.compile(r"(^- id:\s*|(?:→|->)\s*)([a-z0-9]+(?:-[a-z0-9]+)*)", re.MULTILINE)
_HAN = re.compile(r"[\u4e00-\u9fff]")


def copy_text(text: str, k: int, alphabet: list[str]) -> str:
    """Copy k of one topic file: ids renamed, a seeded share of Han characters substituted."""
    text = _ID_REF.sub(lambda m: f"{m.group(1)}{m.group(2)}-s{k}", text)
    rng = random.Random(k)
    chosen = rng.sample(alphabet, max(1, int(len(alphabet) * SUBSTITUTED_SHARE)))
    targets = chosen[:]
    rng.shuffle(targets)
    return text.translate(str.maketrans(dict(zip(chosen, targets))))


def make_corpus(src: Path, dest: Path, scale: int) -> Path:
    """Write the real corpus plus `scale - 1` synthetic copies of its topic files under `dest`."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    files = corpus_files(src)
    texts = {p: p.read_text(encoding="utf-8") for p in files}
    alphabet = sorted({ch for t in texts.values() for ch in _HAN.findall(t)} - STRUCTURE_CHARS)
    for k in range(1, scale):
        for path, text in texts.items():
            rel = path.relative_to(src)
            out = dest / rel.parent / f"{rel.stem}-s{k}{rel.suffix}"
            out.write_text(copy_text(text, k, alphabet), encoding="utf-8")
    return dest


def bench_queries(corpus_dir: Path, n: int) -> list[str]:
    """n queries cycling through the syllabus wordings and the labelled eval queries."""
    queries: list[str] = []
    for path in sorted((corpus_dir / "syllabus").glob("*.md")):
        for line in path.read_text(encoding="utf-8").splitlines():
            m = re.match(r"^-\s+(.+?)\s+(?:→|->)", line.strip())
            if m:
                queries.append(m.group(1))
    labelled = ROOT / "eval" / "data" / "queries.jsonl"
    if labelled.exists():
        for line in labelled.read_text(encoding="utf-8").splitlines():
            if line.strip():
                queries.append(json.loads(line)["query"])
    if not queries:
        queries = ["注意力为什么除以根号d"]
    return [queries[i % len(queries)] for i in range(n)]


def answer_for(entry, i: int) -> str:
    """A candidate answer of varying quality for benchmark grading: all key points, half of them
    with some prose, or a short vague reply (the grader's work differs between them)."""
    kind = i % 3
    if kind == 0:
        return "；".join(entry.key_points) + "。"
    if kind == 1:
        half = entry.key_points[: max(1, len(entry.key_points) // 2)]
        return "我的理解是：" + "，".join(half) + "。另外" + entry.answer[:200].replace("\n", " ")
    return "这个我大概知道，跟训练稳定性有关，具体细节记不太清了。"
