"""The corpus: every markdown file under the corpus root -> one validated `Corpus`.

    corpus = load_corpus(settings.corpus_dir)          # raises CorpusError listing every problem
    entries, problems = check_corpus(root)             # `tutor check` / `python -m ingest --check`

Three modules, bottom up: `tutor/corpus_model.py` (Entry, Problem, Corpus), `tutor/corpus_parse.py`
(one file -> entries and problems, with the format's rules) and this one (which files, cross-entry
checks such as duplicate ids and dangling follow-up links, and a parse cache keyed by file content,
so an unchanged corpus costs file reads rather than markdown parsing at start-up). The model names
are re-exported here: the rest of the code imports everything corpus-related from `tutor.corpus`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tutor.corpus_model import (CodeBlock, Corpus, CorpusError, Entry, FollowUp, Misconception,
                                Problem, Source)
from tutor.corpus_parse import display_path, parse_file, parse_source
from tutor.json_cache import read_json, write_json

__all__ = ["CodeBlock", "Corpus", "CorpusError", "Entry", "FollowUp", "Misconception", "Problem", "Source",
           "check_corpus", "corpus_files", "load_corpus", "parse_file", "parse_source"]

SKIPPED_DIRS = {"syllabus"}


def corpus_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*.md")
        if p.name.lower() != "readme.md" and not (set(p.relative_to(root).parts[:-1]) & SKIPPED_DIRS)
    )


PARSE_CACHE_VERSION = "1"


def _parse_cached(path: Path, root: Path, cache: dict | None, fresh: dict) -> tuple[list[Entry], list[Problem]]:
    """parse_file, memoised by the file's content hash (and the display path used in messages)."""
    if cache is None:
        return parse_file(path, root)
    raw = path.read_bytes()
    key = hashlib.sha1(raw + b"\0" + path.relative_to(root).as_posix().encode()
                       + b"\0" + display_path(path).encode()).hexdigest()
    hit = cache.get(key)
    if hit is None:
        entries, problems = parse_file(path, root)
        hit = {"entries": [[e.model_dump(), e._id_line, e._follow_up_lines, e._valid] for e in entries],
               "problems": [[p.path, p.line, p.message] for p in problems]}
    fresh[key] = hit
    entries = []
    for dump, id_line, fu_lines, valid in hit["entries"]:
        e = Entry.model_validate(dump)
        e._id_line, e._follow_up_lines, e._valid = id_line, list(fu_lines), valid
        entries.append(e)
    return entries, [Problem(*p) for p in hit["problems"]]


def check_corpus(root: Path, cache_dir: Path | None = None) -> tuple[list[Entry], list[Problem]]:
    """Parse and validate every file; cross-entry checks (duplicate ids, dangling links) included.

    With `cache_dir`, unchanged files (same content hash) are not parsed again: the no-change
    path of ingest and app start-up then costs file reads, not markdown parsing."""
    root = Path(root)
    entries: list[Entry] = []
    problems: list[Problem] = []
    if not root.is_dir():
        return [], [Problem(display_path(root), 1, "语料目录不存在 (corpus directory not found)")]
    files = corpus_files(root)
    if not files:
        problems.append(Problem(display_path(root), 1, "语料目录中没有 .md 文件 (no markdown files)"))
    cache_file = Path(cache_dir) / f"corpus-parse-v{PARSE_CACHE_VERSION}.json" if cache_dir else None
    cache = read_json(cache_file) if cache_file else None
    fresh: dict = {}
    for path in files:
        got, file_problems = _parse_cached(path, root, cache, fresh)
        entries.extend(got)
        problems.extend(file_problems)
    if cache_file is not None and fresh.keys() != (cache or {}).keys():
        try:
            write_json(cache_file, fresh)
        except OSError:
            pass  # a cache that cannot be written only costs time

    seen: dict[str, Entry] = {}
    for e in entries:
        if e.id in seen:
            first = seen[e.id]
            problems.append(Problem(display_path(root / e.path), e._id_line,
                                    f"id `{e.id}` 重复，首次出现在 {first.path}:{first.line} (duplicate id)"))
            e._valid = False
        else:
            seen[e.id] = e
    for e in entries:
        for line_no, f in zip(e._follow_up_lines, e.follow_ups):
            if f.entry_id and f.entry_id not in seen:
                problems.append(Problem(display_path(root / e.path), line_no,
                                        f"追问指向不存在的条目 `{f.entry_id}` (dangling follow-up link)"))
                f.entry_id = None  # keep serving the entry, without the broken link
    problems.sort(key=lambda p: (p.path, p.line))
    unique = list(seen.values())
    return unique, problems


def load_corpus(root: Path, strict: bool = True, cache_dir: Path | None = None,
                checked: tuple[list[Entry], list[Problem]] | None = None) -> Corpus:
    """The corpus as served. `checked` reuses a `check_corpus` result instead of parsing again."""
    entries, problems = checked if checked is not None else check_corpus(root, cache_dir)
    if problems and strict:
        raise CorpusError(problems)
    # Non-strict (the app at start-up): serve the valid entries, drop the broken ones.
    return Corpus(root=Path(root), entries=[e for e in entries if e._valid])
