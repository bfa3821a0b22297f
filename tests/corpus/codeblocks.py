"""Run the code that corpus entries show, so tests check the corpus's own code and not a copy.

An entry's ```python blocks are meant to run top to bottom as one script (imports included).
`exec_entry("code-mha")` compiles every block of the entry in order into one fresh namespace and
returns it, so a test can pull out the classes and functions the answer defines. Each block is
compiled with the markdown file as its filename and padded to its real line, so a traceback
points at `corpus/<file>.md:<line>` where the author can fix it.
"""

from __future__ import annotations

from pathlib import Path

from tutor.corpus import CodeBlock, Corpus, Entry, load_corpus

CORPUS_ROOT = Path(__file__).resolve().parents[2] / "corpus"
PYTHON_LANGS = {"python", "py", "python3"}

_corpus: Corpus | None = None


def corpus() -> Corpus:
    """The corpus, loaded once. Non-strict so that another writer's half-finished file does not
    break these tests; the validity of our own files is asserted separately."""
    global _corpus
    if _corpus is None:
        _corpus = load_corpus(CORPUS_ROOT, strict=False)
    return _corpus


def entry(entry_id: str) -> Entry:
    e = corpus().get(entry_id)
    if e is None:
        raise LookupError(f"entry {entry_id!r} is missing or invalid (run `python -m ingest --check`)")
    return e


def python_blocks(entry_id: str) -> list[CodeBlock]:
    return [b for b in entry(entry_id).code_blocks if b.lang.lower() in PYTHON_LANGS]


def exec_entry(*entry_ids: str, namespace: dict | None = None) -> dict:
    """Exec all python blocks of the given entries, in order, into one namespace and return it."""
    ns = namespace if namespace is not None else {"__name__": "corpus_entry"}
    for entry_id in entry_ids:
        e = entry(entry_id)
        blocks = python_blocks(entry_id)
        if not blocks:
            raise AssertionError(f"entry {entry_id!r} has no ```python block")
        filename = str(CORPUS_ROOT / e.path)
        for block in blocks:
            # The fence opens on `block.line`; the code starts on the next line.
            code = compile("\n" * block.line + block.code, filename, "exec")
            exec(code, ns)  # noqa: S102 - running our own corpus code is the point of the test
    return ns
