"""Shared by the corpus section tests: the syllabus-map parser and the per-file validity check.

Every section test checks that its own files are valid and that its syllabus items are aliases of
their entries; the parsing and the checking live here once.
"""

from __future__ import annotations

import re
from pathlib import Path

from tutor.corpus import parse_file

SYLLABUS_LINE = re.compile(r"^-\s+(.+?)\s+(?:→|->)\s+`?([a-z0-9-]+)`?\s*$")


def syllabus_items(path: Path, with_section: bool = False) -> list[tuple]:
    """(item text, entry id) per line of a syllabus file; (section, text, id) with `with_section`."""
    items, section = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        m = SYLLABUS_LINE.match(line.strip())
        if m:
            items.append((section, m.group(1), m.group(2)) if with_section else (m.group(1), m.group(2)))
    return items


def own_file_problems(corpus_root: Path, own_files, corpus) -> list[str]:
    """Format problems in the given files, files without entries, entries that did not load
    (duplicate id or invalid), and follow-up links that point nowhere."""
    out: list[str] = []
    for rel in sorted(own_files):
        entries, problems = parse_file(corpus_root / rel, corpus_root)
        out += [str(p) for p in problems]
        if not entries:
            out.append(f"{rel}: no entries")
        for e in entries:
            loaded = corpus.get(e.id)
            if loaded is None or loaded.path != rel:
                out.append(f"{rel}: {e.id} did not load (duplicate id or invalid)")
            out += [f"{rel}: {e.id} → {f.entry_id} points at no entry"
                    for f in e.follow_ups if f.entry_id and corpus.get(f.entry_id) is None]
    return out


def phrasing_owners(corpus) -> dict[str, set[str]]:
    """Compact phrasing (question or alias) -> ids of the entries that use it."""
    from tutor.text import compact

    owners: dict[str, set[str]] = {}
    for e in corpus.entries:
        for phrase in (e.question, *e.aliases):
            owners.setdefault(compact(phrase), set()).add(e.id)
    return owners
