"""The corpus data model: `Entry` and its parts, `Problem` (a `path:line: message`), `Corpus`.

Plain pydantic models and dataclasses with no parsing: `tutor/corpus_parse.py` builds them from
markdown, `tutor/corpus.py` loads a whole corpus. Everything else imports them from `tutor.corpus`.
`Entry.content_hash()` covers what is displayed, embedded or graded (location left out), so index
and caches skip unchanged entries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field, PrivateAttr


class Source(BaseModel):
    text: str
    title: str
    year: int | None = None
    arxiv: str | None = None
    url: str | None = None


class FollowUp(BaseModel):
    question: str
    entry_id: str | None = None


class Misconception(BaseModel):
    """A false claim candidates make, written as a minimal pair with its correction: the grader flags
    an answer that says what only the claim says and nothing only the correction says."""
    claim: str
    correction: str

    def display(self) -> str:
        """One line for people (entry page, interview): ✗ claim → ✓ correction."""
        return f"✗ {self.claim} → ✓ {self.correction}"

    def pair(self) -> str:
        """The corpus's own form, for a model's prompt: 误：claim ｜ 正：correction."""
        return f"误：{self.claim} ｜ 正：{self.correction}"


class CodeBlock(BaseModel):
    lang: str
    code: str
    line: int  # 1-based line of the opening fence


class Entry(BaseModel):
    id: str
    question: str
    aliases: list[str]
    answer: str
    key_points: list[str]
    follow_ups: list[FollowUp]
    tags: list[str]
    level: int = Field(ge=1, le=3)
    sources: list[Source]
    path: str  # posix path relative to the corpus root
    line: int  # line of the entry's H2 heading
    topic: str  # the file's H1 title
    section: str  # the top-level folder, e.g. "1.大模型算法基础"
    code_blocks: list[CodeBlock] = []
    misconceptions: list[Misconception] = []  # optional section 常见误区
    # Where things were written, for messages that point at a line; not part of the content.
    _id_line: int = PrivateAttr(default=0)
    _follow_up_lines: list[int] = PrivateAttr(default_factory=list)
    _valid: bool = PrivateAttr(default=True)

    @property
    def citation(self) -> str:
        return f"{self.path}#{self.id}"

    def content_hash(self) -> str:
        """Hash of everything that is displayed or embedded; location is deliberately left out."""
        payload = self.model_dump_json(exclude={"line", "code_blocks"})
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class CorpusError(Exception):
    """Raised by `load_corpus(strict=True)`; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        head = "\n".join(str(p) for p in problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"语料有 {len(problems)} 处问题 (corpus has {len(problems)} problems):\n{head}{more}")


@dataclass
class Corpus:
    root: Path
    entries: list[Entry]

    def __post_init__(self) -> None:
        self.by_id = {e.id: e for e in self.entries}

    def get(self, entry_id: str) -> Entry | None:
        return self.by_id.get(entry_id)

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for e in sorted(self.entries, key=lambda e: e.id):
            h.update(e.id.encode() + b"\0" + e.content_hash().encode())
        return h.hexdigest()[:16]

