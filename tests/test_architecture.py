"""Imports flow one way: bottom -> retrieval -> features -> entry points; nothing imports eval; no cycles.

Lazy imports inside functions count too: a layering rule that only holds at import time is no rule.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# First matching prefix wins. A new module must be placed here, which is the point.
LAYERS = [
    ("tutor.ui", 4), ("tutor.cli", 4), ("tutor.doctor", 4), ("app", 4), ("ingest.cli", 4), ("ingest.__main__", 4),
    ("tutor.settings", 0), ("tutor.corpus", 0), ("tutor.textnorm", 0), ("tutor.text", 0), ("tutor.segment", 0), ("tutor.embeddings", 0),
    ("tutor.store", 0), ("tutor.workers", 0), ("tutor.json_cache", 0), ("tutor.llm", 0), ("tutor.__init__", 0), ("tutor.data", 0),
    ("ingest.chunking", 1), ("ingest.pipeline", 1), ("ingest.__init__", 1),
    ("tutor.retriever", 2),
    ("tutor.chat", 3), ("tutor.prompts", 3), ("tutor.citations", 3), ("tutor.offline", 3),
    ("tutor.grading_matching", 3), ("tutor.grading_reference_checks", 3), ("tutor.grad", 3),
    ("tutor.injection", 3), ("tutor.interview", 3), ("tutor.progress", 3), ("tutor.review", 3),
    ("tutor.speech", 3), ("tutor.audio", 3), ("tutor.tts", 3), ("tutor.stt", 3),
]
ENTRY_SUFFIX = "_cli"  # tutor/*_cli.py are command modules: entry points


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts)


def layer_of(name: str) -> int | None:
    if name.split(".")[-1].endswith(ENTRY_SUFFIX):
        return 4
    for prefix, layer in LAYERS:
        if name == prefix or name.startswith((prefix + ".", prefix + "_")) or name == prefix + "s" \
                or (prefix == "tutor.grad" and name.startswith(prefix)):  # grading, grade_model, ...
            return layer
    return None


def product_modules() -> dict[str, Path]:
    files = [*ROOT.glob("tutor/**/*.py"), *ROOT.glob("ingest/**/*.py"), ROOT / "app.py"]
    return {module_name(p): p for p in files}


def imports_of(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def internal_deps(mods: dict[str, Path]) -> dict[str, set[str]]:
    deps = {}
    for name, path in mods.items():
        targets = set()
        for imp in imports_of(path):
            # the longest known module that the import names
            parts = imp.split(".")
            for n in range(len(parts), 0, -1):
                cand = ".".join(parts[:n])
                if cand in mods and cand != name:
                    targets.add(cand)
                    break
        deps[name] = targets
    return deps


def test_every_module_has_a_layer():
    unplaced = [m for m in product_modules() if layer_of(m) is None]
    assert not unplaced, f"place these modules in a layer in tests/test_architecture.py: {unplaced}"


def test_nothing_in_the_product_imports_eval():
    offenders = [m for m, p in product_modules().items()
                 if any(i == "eval" or i.startswith("eval.") for i in imports_of(p))]
    assert not offenders, offenders


def test_imports_only_point_down():
    mods = product_modules()
    bad = []
    for name, targets in internal_deps(mods).items():
        for t in targets:
            lo, lt = layer_of(name), layer_of(t)
            if lo is None or lt is None:
                continue
            if lt > lo:  # this also keeps the write side (1) off the retriever (2) and features (3)
                bad.append(f"{name} (layer {lo}) imports {t} (layer {lt})")
    assert not bad, "\n".join(sorted(set(bad)))


def test_no_import_cycles():
    deps = internal_deps(product_modules())
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(deps.get(node, ())):
            if state.get(nxt) == 1:
                cycle.extend(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, stack + [nxt]):
                return True
        state[node] = 2
        return False

    for mod in sorted(deps):
        if state.get(mod) is None and visit(mod, [mod]):
            break
    assert not cycle, " -> ".join(cycle)
