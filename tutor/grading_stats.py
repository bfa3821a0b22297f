"""Corpus statistics for the offline grader: document frequencies of terms and bigrams, for IDF weights.

Design. One document per entry (question, aliases, answer, key points). Analysing every entry is the
grader's whole start-up cost (~0.5 s per 100 entries: segmentation, synonym tables), so each entry's
term set and bigram set are kept on disk under the data dir, keyed by the entry's content hash, like
the parse and token caches: a restart re-reads them, and an edited entry is the only one analysed
again. In memory, statistics are also shared by every grader built for the same corpus.

Trade-offs. The sets depend on the analyser, which depends on code and on the corpus itself (the
grader adds the corpus's Chinese tags to its dictionary): the cache file's name hashes the analyser's
source, the retrieval glossary version and those tags, so any change starts a fresh file rather than
mixing old and new analyses. The price is that adding one tag re-analyses every entry.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from tutor import textnorm
from tutor.corpus import Entry
from tutor.json_cache import read_json, write_json
from tutor.text import tokenizer_version
from tutor.textnorm import Analyzer, canonical_text, cjk_bigrams

log = logging.getLogger(__name__)

_MEMORY: dict[str, "CorpusStats"] = {}


@dataclass
class CorpusStats:
    """Document frequencies over the corpus (one document per entry), for IDF weights."""

    n_docs: int = 0
    term_df: Counter = field(default_factory=Counter)
    bigram_df: Counter = field(default_factory=Counter)

    def idf(self, term: str, bigram: bool = False) -> float:
        if self.n_docs == 0:
            return 1.0
        df = (self.bigram_df if bigram else self.term_df).get(term, 0)
        return math.log(1.0 + self.n_docs / (df + 1.0))


def corpus_stats(entries: Sequence[Entry], analyzer: Analyzer, cache_dir: Path | None = None) -> CorpusStats:
    """Document frequencies of `entries`, from the memory cache, the disk cache or by analysing them."""
    hashes = [e.content_hash() for e in entries]
    key = hashlib.sha256("\0".join(sorted(f"{e.id}:{h}" for e, h in zip(entries, hashes))).encode()).hexdigest()
    if key in _MEMORY:
        return _MEMORY[key]
    path = cache_dir / f"grader-terms-{analyzer_version(analyzer)}.json" if cache_dir else None
    cached = read_json(path)
    fresh: dict[str, list[list[str]]] = {}
    stats = CorpusStats(n_docs=len(entries))
    for e, h in zip(entries, hashes):
        doc = cached.get(h)
        if not (isinstance(doc, list) and len(doc) == 2):
            text = " ".join([e.question, *e.aliases, e.answer, *e.key_points])
            doc = [sorted({t.text for t in analyzer.content_terms(text)}), sorted(cjk_bigrams(canonical_text(text)))]
        fresh[h] = doc
        stats.term_df.update(doc[0])
        stats.bigram_df.update(doc[1])
    if path and fresh.keys() != cached.keys():
        _write(path, fresh)
    if len(_MEMORY) >= 8:
        _MEMORY.clear()
    _MEMORY[key] = stats
    return stats


def analyzer_version(analyzer: Analyzer) -> str:
    """Changes whenever an entry's analysed terms could: the analyser's code and tables, the shared
    glossary and tokenizer, and the corpus terms the analyser adds to its dictionary."""
    h = hashlib.sha1(Path(textnorm.__file__).read_bytes())
    h.update(tokenizer_version().encode())
    h.update("\0".join(analyzer.extra_terms).encode())
    return h.hexdigest()[:12]


def _write(path: Path, docs: dict) -> None:
    try:
        for stale in path.parent.glob("grader-terms-*.json"):  # analyses of an older analyser
            if stale != path:
                stale.unlink(missing_ok=True)
        write_json(path, docs)
    except OSError as exc:
        log.warning("could not write the grader's term cache: %s", exc)
