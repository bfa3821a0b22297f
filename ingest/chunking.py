"""Entries -> chunks for the vector index.

Each entry gives a "question card" chunk (question, aliases, key points: the words a candidate's
query most resembles) and answer chunks. Answers are split on markdown block boundaries found by
markdown-it (paragraphs, lists, tables, fences, `$$` blocks) and packed greedily up to MAX_CHARS;
a `####` heading starts a new chunk and names its section. A code fence or `$$` block is never
cut: an oversized one becomes a chunk of its own. Chunk ids are content-addressed
(`entry-id#hash`), which is what makes ingest incremental and an interrupted ingest harmless.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt

from tutor.corpus import Entry
from tutor.json_cache import read_json, write_json

MAX_CHARS = 600
_MD = MarkdownIt("commonmark").disable("inline")  # block boundaries are all chunking needs


@dataclass
class Chunk:
    id: str
    entry_id: str
    text: str  # what is embedded
    metadata: dict = field(default_factory=dict)


def _blocks(markdown: str) -> list[tuple[str, str | None]]:
    """Top-level blocks of the answer as (source text, heading text if the block is a heading)."""
    lines = markdown.splitlines()
    tokens = _MD.parse(markdown)
    spans: list[tuple[int, int, str | None]] = []
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.map and depth == 0 and tok.nesting >= 0:
            heading = tokens[i + 1].content if tok.type == "heading_open" else None
            spans.append((tok.map[0], tok.map[1], heading))
        depth += tok.nesting
    out: list[tuple[str, str | None]] = []
    for start, end, heading in spans:
        out.append(("\n".join(lines[start:end]).strip(), heading))
    return _merge_math_blocks(out)


def _merge_math_blocks(blocks):
    """markdown-it (commonmark) does not know `$$`; glue paragraphs until a display formula closes."""
    merged, open_buf = [], None
    for text, heading in blocks:
        if open_buf is not None:
            open_buf = open_buf + "\n\n" + text
            if text.count("$$") % 2 == 1:
                merged.append((open_buf, None))
                open_buf = None
            continue
        if heading is None and text.count("$$") % 2 == 1:
            open_buf = text
            continue
        merged.append((text, heading))
    if open_buf is not None:
        merged.append((open_buf, None))
    return merged


def chunk_entry(entry: Entry, max_chars: int = MAX_CHARS) -> list[Chunk]:
    base = {
        "entry_id": entry.id, "title": entry.question, "path": entry.path, "topic": entry.topic,
        "tags": ",".join(entry.tags), "level": entry.level,
    }
    texts: list[tuple[str, str]] = []  # (section, body)
    card = "\n".join([entry.question, "；".join(entry.aliases), *entry.key_points])
    texts.append(("问题", card))

    section, buf = "答案", ""
    for text, heading in _blocks(entry.answer):
        if heading is not None:
            if buf:
                texts.append((section, buf))
            section, buf = f"答案 · {heading.strip()}", ""
            continue
        if buf and len(buf) + len(text) > max_chars:
            texts.append((section, buf))
            buf = ""
        buf = f"{buf}\n\n{text}" if buf else text
    if buf:
        texts.append((section, buf))
    if entry.misconceptions:
        texts.append(("常见误区", "\n".join(f"误：{m.claim}；正：{m.correction}" for m in entry.misconceptions)))

    chunks, seen = [], set()
    for n, (sec, body) in enumerate(texts):
        text = body if sec == "问题" else f"{entry.question}\n{body}"
        digest = hashlib.sha1(text.encode()).hexdigest()[:12]
        cid = f"{entry.id}#{digest}"
        if cid in seen:
            continue
        seen.add(cid)
        chunks.append(Chunk(id=cid, entry_id=entry.id, text=text,
                            metadata={**base, "section": sec, "order": n}))
    return chunks


CHUNK_CACHE_VERSION = "2"


def chunk_corpus(entries: list[Entry], max_chars: int = MAX_CHARS, cache_dir: Path | None = None) -> list[Chunk]:
    """Chunks of every entry; with `cache_dir`, an entry whose content hash is unchanged is not re-chunked."""
    if cache_dir is None:
        return [c for e in entries for c in chunk_entry(e, max_chars)]
    cache_file = Path(cache_dir) / f"chunks-v{CHUNK_CACHE_VERSION}-{max_chars}.json"
    cache = read_json(cache_file)
    fresh, out = {}, []
    for e in entries:
        key = e.content_hash() + e.path
        rows = cache.get(key)
        if rows is None:
            rows = [[c.id, c.text, c.metadata] for c in chunk_entry(e, max_chars)]
        fresh[key] = rows
        out.extend(Chunk(id=i, entry_id=e.id, text=t, metadata=m) for i, t, m in rows)
    if fresh.keys() != cache.keys():
        try:
            write_json(cache_file, fresh)
        except OSError:
            pass  # a cache that cannot be written only costs time
    return out


def strip_markup(text: str) -> str:
    """Markdown without fences' markers, for display snippets."""
    return re.sub(r"```\w*", "", text).strip()
