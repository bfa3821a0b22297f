"""Parsing one corpus file: markdown -> validated `Entry` objects and `Problem`s with line numbers.

Design: the corpus must read well as plain markdown on a code-hosting site, so an entry is an
H2 heading (the question) followed by a few labelled bullet lines (`- id: ...`) and H3 sections
(别名 / 答案 / 要点 / 追问 / 来源 / 常见误区). The format is specified in `corpus/README.md`; the
labels, counts and patterns below are that specification in code.

We let markdown-it-py find headings, lists and fences (so a `##` inside a code block is never
taken for an entry) and keep its line numbers, so every problem is reported as `path:line: msg`.
The answer keeps its raw markdown source lines: it is displayed, chunked and graded as written.
Validation collects every problem instead of stopping at the first, so one `--check` run
shows the author everything to fix.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from markdown_it import MarkdownIt

from tutor.corpus_model import CodeBlock, Entry, FollowUp, Misconception, Problem, Source

ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
FOLLOW_UP_LINK_RE = re.compile(r"\s*(?:→|->)\s*`?([A-Za-z0-9-]+)`?\s*$")
YEAR_RE = re.compile(r"\b(19[5-9]\d|20\d\d)\b")
ARXIV_RE = re.compile(r"arXiv:\s*(\d{4}\.\d{4,5})(?:v\d+)?", re.IGNORECASE)
URL_RE = re.compile(r"https?://[^\s)>\]]+")

# Labels accepted in Chinese or English; the value on the left is the canonical name.
META_LABELS = {"id": "id", "难度": "level", "level": "level", "标签": "tags", "tags": "tags"}
SECTION_LABELS = {
    "别名": "aliases", "aliases": "aliases",
    "答案": "answer", "answer": "answer",
    "要点": "key_points", "key points": "key_points",
    "追问": "follow_ups", "follow-ups": "follow_ups", "follow ups": "follow_ups",
    "来源": "sources", "sources": "sources",
    "常见误区": "misconceptions", "misconceptions": "misconceptions",
}
REQUIRED_SECTIONS = ("aliases", "answer", "key_points", "follow_ups", "sources")
KEY_POINTS_RANGE = (3, 6)
FOLLOW_UPS_RANGE = (2, 4)
MISCONCEPTIONS_MAX = 6
# "- 误：<what candidates wrongly say> ｜ 正：<the same sentence, corrected>"
MISCONCEPTION_RE = re.compile(r"^误\s*[:：]\s*(?P<claim>.+?)\s*[|｜]\s*正\s*[:：]\s*(?P<correction>.+)$")


@functools.lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    # Block structure only: headings, lists and fences are all we read, and the inline pass
    # (emphasis, links, ...) would double the parse time for nothing.
    return MarkdownIt("commonmark").disable("inline")


def _list_items(tokens, lines: list[str]) -> list[tuple[int, str]]:
    """Top-level bullet items of a token slice as (1-based line, raw text without the marker)."""
    items, depth = [], 0
    for tok in tokens:
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            depth += 1
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            depth -= 1
        elif tok.type == "list_item_open" and depth == 1 and tok.map:
            start, end = tok.map
            raw = "\n".join(lines[start:end]).strip()
            raw = re.sub(r"^(?:[-*+]|\d+[.)])\s+", "", raw)
            items.append((start + 1, " ".join(part.strip() for part in raw.splitlines()).strip()))
    return items


def parse_source(text: str) -> Source:
    year = YEAR_RE.search(text)
    arxiv = ARXIV_RE.search(text)
    url = URL_RE.search(text)
    title = re.split(r"[,，]", text, maxsplit=1)[0].strip()
    return Source(
        text=text, title=title,
        year=int(year.group(1)) if year else None,
        arxiv=arxiv.group(1) if arxiv else None,
        url=url.group(0) if url else None,
    )


def _split_csv(value: str) -> list[str]:
    return [v.strip() for v in re.split(r"[,，、;；]", value) if v.strip()]


def _check_fences_and_math(rel: str, lines: list[str], tokens, problems: list[Problem]) -> set[int]:
    """Report unclosed ``` fences and unbalanced $$; return the 0-based lines inside fences."""
    in_fence: set[int] = set()
    for tok in tokens:
        if tok.type == "fence" and tok.map:
            start, end = tok.map
            in_fence.update(range(start, end))
            closing = lines[end - 1].strip() if end - 1 > start else ""
            if not (closing.startswith(tok.markup[0] * len(tok.markup)) and set(closing) <= {tok.markup[0]}):
                problems.append(Problem(rel, start + 1, f"代码块没有闭合 (unclosed code fence {tok.markup})"))
    open_line = None
    for i, line in enumerate(lines):
        if i in in_fence:
            continue
        stripped = re.sub(r"`[^`]*`", "", line)  # $$ inside inline code does not count
        for _ in range(stripped.count("$$")):
            open_line = None if open_line is not None else i + 1
        # A heading ends any math block: an unmatched $$ must not swallow the next entry.
        if open_line is not None and line.startswith("#") and open_line != i + 1:
            problems.append(Problem(rel, open_line, "公式块 $$ 没有闭合 (unclosed $$ block)"))
            open_line = None
    if open_line is not None:
        problems.append(Problem(rel, open_line, "公式块 $$ 没有闭合 (unclosed $$ block)"))
    return in_fence


def parse_file(path: Path, root: Path) -> tuple[list[Entry], list[Problem]]:
    """Parse one topic file. Returns the entries that validated and every problem found."""
    rel = path.relative_to(root).as_posix()
    shown = display_path(path)
    problems: list[Problem] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return [], [Problem(shown, 1, f"文件不是 UTF-8 编码 (not UTF-8: {exc.reason})")]
    lines = text.splitlines()
    tokens = _md().parse(text)
    in_fence = _check_fences_and_math(shown, lines, tokens, problems)

    headings = []  # (level, 0-based line, title)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map:
            headings.append((int(tok.tag[1]), tok.map[0], tokens[i + 1].content.strip()))
    h1 = [h for h in headings if h[0] == 1]
    if not h1:
        problems.append(Problem(shown, 1, "缺少一级标题 `# 主题` (missing H1 topic title)"))
    topic = h1[0][2] if h1 else path.stem
    section = rel.split("/")[0] if "/" in rel else ""

    entry_heads = [h for h in headings if h[0] == 2]
    # Each entry gets only its own slice of the token stream (tokens come in source order), so a
    # file of many entries is not rescanned once per section of each entry.
    token_at = {}
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.tag == "h2" and tok.map:
            token_at[tok.map[0]] = i
    entries: list[Entry] = []
    for n, (_, start, question) in enumerate(entry_heads):
        end = entry_heads[n + 1][1] if n + 1 < len(entry_heads) else len(lines)
        own = tokens[token_at[start]:token_at[end] if end in token_at else len(tokens)]
        entry, entry_problems = _parse_entry(
            shown, rel, lines, own, headings, start, end, question, topic, section, in_fence
        )
        problems.extend(entry_problems)
        if entry is not None:
            entries.append(entry)
    if not entry_heads and h1:
        problems.append(Problem(shown, h1[0][1] + 1, "文件中没有条目 `## 问题` (no entries)"))
    return entries, problems


def _parse_entry(shown, rel, lines, tokens, headings, start, end, question, topic, section, in_fence):
    problems: list[Problem] = []
    err = lambda line, msg: problems.append(Problem(shown, line, msg))  # noqa: E731
    subs = [h for h in headings if start < h[1] < end and h[0] == 3]
    meta_end = subs[0][1] if subs else end

    # Labelled lines between the H2 and the first H3.
    meta: dict[str, tuple[int, str]] = {}
    for line_no, item in _list_items(_scoped(tokens, start + 1, meta_end), lines):
        label, sep, value = item.partition(":")
        if not sep:
            label, sep, value = item.partition("：")
        key = META_LABELS.get(label.strip().lower())
        if key:
            meta[key] = (line_no, value.strip())

    sections: dict[str, tuple[int, int, int]] = {}  # name -> (heading line, body start, body end)
    for k, (_, h_line, title) in enumerate(subs):
        body_end = subs[k + 1][1] if k + 1 < len(subs) else end
        name = SECTION_LABELS.get(title.strip().lower())
        if name is None:
            err(h_line + 1, f"未知小节 `### {title}` (unknown section; expected one of 别名/答案/要点/追问/来源/常见误区)")
        elif name in sections:
            err(h_line + 1, f"小节 `### {title}` 重复 (duplicate section)")
        else:
            sections[name] = (h_line + 1, h_line + 1, body_end)

    for name in REQUIRED_SECTIONS:
        if name not in sections:
            label = {v: k for k, v in SECTION_LABELS.items() if not k.isascii()}[name]
            err(start + 1, f"条目「{question}」缺少小节 `### {label}` (missing section {name})")

    entry_id = meta.get("id", (start + 1, ""))[1]
    if "id" not in meta:
        err(start + 1, f"条目「{question}」缺少 `- id: ...` (missing id)")
    elif not ID_RE.match(entry_id):
        err(meta["id"][0], f"id `{entry_id}` 只能用小写字母、数字和连字符 (id must be kebab-case ASCII)")

    level = 0
    if "level" not in meta:
        err(start + 1, "缺少 `- 难度: 1|2|3` (missing level)")
    elif meta["level"][1] not in ("1", "2", "3"):
        err(meta["level"][0], f"难度必须是 1、2 或 3，而不是 `{meta['level'][1]}` (level must be 1-3)")
    else:
        level = int(meta["level"][1])
    tags = _split_csv(meta["tags"][1]) if "tags" in meta else []
    if not tags:
        err(meta.get("tags", (start + 1,))[0], "缺少 `- 标签: a, b` (missing tags)")

    def items(name):
        if name not in sections:
            return []
        _, b0, b1 = sections[name]
        return _list_items(_scoped(tokens, b0, b1), lines)

    aliases = [t for _, t in items("aliases")]
    key_points = [t for _, t in items("key_points")]
    follow_ups = []
    for line_no, t in items("follow_ups"):
        m = FOLLOW_UP_LINK_RE.search(t)
        follow_ups.append((line_no, FollowUp(question=t[: m.start()].strip() if m else t,
                                             entry_id=m.group(1) if m else None)))
    sources = [(line_no, parse_source(t)) for line_no, t in items("sources")]
    misconceptions = []
    for line_no, t in items("misconceptions"):
        m = MISCONCEPTION_RE.match(t)
        if m:
            misconceptions.append(Misconception(claim=m["claim"], correction=m["correction"]))
        else:
            err(line_no, f"常见误区应写成「误：…… ｜ 正：……」，而不是「{t[:40]}」 (misconception must be '误：claim ｜ 正：correction')")

    answer = ""
    code_blocks: list[CodeBlock] = []
    if "answer" in sections:
        h_line, b0, b1 = sections["answer"]
        answer = "\n".join(lines[b0:b1]).strip()
        if not answer:
            err(h_line, "答案为空 (empty answer)")
        for tok in _scoped(tokens, b0, b1):
            if tok.type == "fence" and tok.map:
                code_blocks.append(CodeBlock(lang=tok.info.strip().split(" ")[0], code=tok.content,
                                             line=tok.map[0] + 1))

    def count_check(name, got, lo, hi, label):
        if name in sections and not (lo <= len(got) <= hi):
            err(sections[name][0], f"{label}应有 {lo}-{hi} 条，现在 {len(got)} 条 ({name}: expected {lo}-{hi}, got {len(got)})")

    count_check("key_points", key_points, *KEY_POINTS_RANGE, "要点")
    count_check("follow_ups", follow_ups, *FOLLOW_UPS_RANGE, "追问")
    count_check("misconceptions", misconceptions, 1, MISCONCEPTIONS_MAX, "常见误区")
    if "aliases" in sections and not aliases:
        err(sections["aliases"][0], "别名为空 (no aliases)")
    if "sources" in sections and not sources:
        err(sections["sources"][0], "来源为空 (no sources)")
    for line_no, src in sources:
        if not (src.year or src.arxiv or src.url):
            err(line_no, f"来源「{src.text}」需要年份、arXiv 号或网址 (source needs a year, arXiv id or URL)")
    for line_no, kp in items("key_points"):
        if len(kp) < 4:
            err(line_no, f"要点「{kp}」太短 (key point too short)")

    if problems and not entry_id:
        return None, problems
    try:
        entry = Entry(
            id=entry_id, question=question, aliases=aliases, answer=answer, key_points=key_points,
            follow_ups=[f for _, f in follow_ups], tags=tags, level=level or 1,
            sources=[s for _, s in sources], path=rel, line=start + 1, topic=topic, section=section,
            code_blocks=code_blocks, misconceptions=misconceptions,
        )
    except Exception as exc:  # pydantic reports in English; keep the location
        err(start + 1, f"条目无效 (invalid entry): {exc}")
        return None, problems
    entry._follow_up_lines = [line_no for line_no, _ in follow_ups]
    entry._id_line = meta.get("id", (start + 1,))[0]
    entry._valid = not problems
    return entry, problems


def _scoped(tokens, start: int, end: int):
    """Tokens whose source starts in [start, end), plus their closing tokens (which have no map)."""
    out, inside = [], 0
    for tok in tokens:
        if tok.map is not None:
            in_range = start <= tok.map[0] < end
            if in_range:
                out.append(tok)
                if tok.nesting == 1:
                    inside += 1
            elif inside == 0:
                continue
        elif inside > 0:
            out.append(tok)
            if tok.nesting == -1:
                inside -= 1
    return out



def display_path(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()
