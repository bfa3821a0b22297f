"""Citations: numbered references to corpus entries, checked while the answer streams.

Design: a model's answer cites the numbered context entries as `[1]`, `[2]`. `CitationFilter`
passes the streamed text through and keeps a marker only if its number is one we actually gave the
model; anything else (`[7]` with five entries, `[0]`) is removed before the user sees it. `Source`
ties a number to an `Entry`, and `format_sources` renders the closing list the user can check:
`[1] 问题标题 — path#anchor` (`Entry.citation`), the same anchor in LLM and offline mode.

Trade-off: the filter is a small character state machine rather than a regex over the finished
text, because text is shown as it streams; it holds back at most one short `[...]` run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tutor.corpus import Entry


@dataclass(frozen=True)
class Source:
    n: int
    entry: Entry

    @property
    def title(self) -> str:
        return self.entry.question

    @property
    def citation(self) -> str:
        return self.entry.citation


def format_sources(sources: list[Source], heading: str = "来源") -> str:
    lines = [f"**{heading}**"]
    lines += [f"[{s.n}] {s.title} — {s.citation}" for s in sources]
    return "\n".join(lines)


class CitationFilter:
    """Streams text through, keeping `[n]` markers only for n in 1..count, outside code.

    Markers may arrive split across deltas ("[", "1", "]"), so a possible marker is held back until
    it closes or proves not to be one. `[1,2]`, `[1][2]`, `【1】` and ranges `[1-3]` are understood
    and normalised to `[1][2]`. Text in ``` fences and `inline code` is never touched (`x[0]`).
    """

    _INNER = re.compile(r"^\s*\d+(?:\s*(?:[,，、]|[-–~])\s*\d+)*\s*$")

    def __init__(self, count: int):
        self.count = count
        self.cited: list[int] = []  # valid numbers in order of first citation
        self.dropped: list[str] = []  # markers removed
        self._pending = ""  # a possible marker being held back
        self._ticks = 0  # a run of backticks being counted
        self._fence = False
        self._inline = False

    def feed(self, text: str) -> str:
        out: list[str] = []
        for ch in text:
            if ch == "`":
                if self._pending:
                    out.append(self._pending)
                    self._pending = ""
                self._ticks += 1
                continue
            if self._ticks:
                self._end_ticks(out)
            if self._fence or self._inline:
                out.append(ch)
            elif self._pending:
                if ch in "]】":
                    out.append(self._close(self._pending[1:]))
                    self._pending = ""
                elif (ch.isdigit() or ch in " ,，、-–~") and len(self._pending) < 24:
                    self._pending += ch
                else:
                    out.append(self._pending)
                    self._pending = ""
                    out.append(self.feed(ch))
            elif ch in "[【":
                self._pending = ch
            else:
                out.append(ch)
        return "".join(out)

    def flush(self) -> str:
        out: list[str] = []
        if self._ticks:
            self._end_ticks(out)
        out.append(self._pending)
        self._pending = ""
        return "".join(out)

    def _end_ticks(self, out: list[str]) -> None:
        out.append("`" * self._ticks)
        if self._ticks >= 3:
            self._fence = not self._fence
        elif not self._fence:
            self._inline = not self._inline
        self._ticks = 0

    def _close(self, inner: str) -> str:
        if not self._INNER.match(inner):
            return self._pending_literal(inner)
        numbers: list[int] = []
        for part in re.split(r"[,，、]", inner):
            bounds = [int(x) for x in re.split(r"[-–~]", part) if x.strip()]
            if len(bounds) == 2 and 0 < bounds[1] - bounds[0] < 20:
                numbers.extend(range(bounds[0], bounds[1] + 1))
            else:
                numbers.extend(bounds)
        kept = [n for n in numbers if 1 <= n <= self.count]
        if len(kept) < len(numbers):
            self.dropped.append(f"[{inner}]")
        for n in kept:
            if n not in self.cited:
                self.cited.append(n)
        return "".join(f"[{n}]" for n in dict.fromkeys(kept))

    def _pending_literal(self, inner: str) -> str:
        return self._pending[0] + inner + ("]" if self._pending[0] == "[" else "】")


