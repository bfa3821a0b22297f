"""The corpus format: the real corpus validates, and every kind of breakage is reported as path:line."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_entry
from tutor.corpus import CorpusError, check_corpus, load_corpus, parse_source

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"


def run_check(corpus_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingest", "--check", "--corpus", str(corpus_dir)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_real_corpus_passes_check():
    proc = run_check(CORPUS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "知识库校验通过" in proc.stdout


def test_entries_carry_every_field():
    corpus = load_corpus(CORPUS)
    assert len(corpus.entries) >= 3
    for e in corpus.entries:
        assert e.question and e.answer and e.aliases and e.tags and e.sources
        assert 3 <= len(e.key_points) <= 6 and 2 <= len(e.follow_ups) <= 4
        assert e.citation == f"{e.path}#{e.id}"
        for f in e.follow_ups:
            assert f.entry_id is None or corpus.get(f.entry_id) is not None


@pytest.fixture
def broken_copy(tmp_path):
    dst = tmp_path / "corpus"
    dst.mkdir()
    write_entry(dst / "a" / "ok.md", "good-entry", "一个好条目？", "正文。")
    return dst


BREAKAGES = {
    "missing section": (lambda t: t.replace("### 要点", "### 不存在的小节"), "unknown section"),
    "no key points": (lambda t: t.replace("- 一个好条目？ 的要点一\n- 一个好条目？ 的要点二\n- 一个好条目？ 的要点三\n", ""),
                      "key_points: expected 3-6, got 0"),
    "dangling link": (lambda t: t.replace("- 追问一是什么？", "- 追问一是什么？ → no-such-entry"), "dangling follow-up"),
    "unclosed fence": (lambda t: t.replace("正文。", "正文。\n\n```python\nx = 1\n"), "unclosed code fence"),
    "unclosed math": (lambda t: t.replace("正文。", "正文。\n\n$$\nx^2\n"), "unclosed $$"),
    "missing id": (lambda t: t.replace("- id: good-entry\n", ""), "missing id"),
    "bad level": (lambda t: t.replace("- 难度: 1", "- 难度: 9"), "level must be 1-3"),
    "bad id": (lambda t: t.replace("- id: good-entry", "- id: Good_Entry"), "kebab-case"),
    "source without year": (lambda t: t.replace("- Attention Is All You Need, 2017, arXiv:1706.03762",
                                                 "- 某篇文章"), "needs a year"),
}


@pytest.mark.parametrize("name", list(BREAKAGES))
def test_each_breakage_is_reported_with_path_and_line(broken_copy, name):
    path = broken_copy / "a" / "ok.md"
    change, expected = BREAKAGES[name]
    original = path.read_text(encoding="utf-8")
    broken = change(original)
    assert broken != original, "the breakage must change the file"
    path.write_text(broken, encoding="utf-8")
    proc = run_check(broken_copy)
    assert proc.returncode != 0
    lines = [l for l in proc.stdout.splitlines() if expected in l]
    assert lines, proc.stdout
    location, _, _ = lines[0].partition(": ")
    file_part, _, line_no = location.rpartition(":")
    assert file_part.endswith("a/ok.md") and int(line_no) >= 1
    # The reported line points into the file at something relevant to the problem.
    assert int(line_no) <= len(broken.splitlines()) + 1


def test_duplicate_id_across_files_names_both(broken_copy):
    write_entry(broken_copy / "b" / "dup.md", "good-entry", "另一个条目？", "正文二。")
    proc = run_check(broken_copy)
    assert proc.returncode != 0
    dup = [l for l in proc.stdout.splitlines() if "duplicate id" in l]
    assert dup and "b/dup.md:" in dup[0] and "a/ok.md" in dup[0]


def test_heading_inside_code_is_not_an_entry(broken_copy):
    path = broken_copy / "a" / "ok.md"
    path.write_text(path.read_text(encoding="utf-8").replace("正文。", "正文。\n\n```md\n## 不是条目\n```\n"),
                    encoding="utf-8")
    entries, problems = check_corpus(broken_copy)
    assert not problems and [e.id for e in entries] == ["good-entry"]
    assert entries[0].code_blocks[0].lang == "md"


def test_strict_load_raises_with_every_problem(broken_copy):
    path = broken_copy / "a" / "ok.md"
    path.write_text(path.read_text(encoding="utf-8").replace("- 难度: 1", "- 难度: x").replace("### 来源", "### 资料"),
                    encoding="utf-8")
    with pytest.raises(CorpusError) as info:
        load_corpus(broken_copy)
    assert len(info.value.problems) >= 2
    # Lenient loading (the app at start-up) serves what is valid and drops the broken entry.
    write_entry(broken_copy / "c" / "fine.md", "fine-entry", "没问题的条目？", "正文。")
    assert [e.id for e in load_corpus(broken_copy, strict=False).entries] == ["fine-entry"]


def test_not_utf8_is_reported(broken_copy):
    (broken_copy / "a" / "gbk.md").write_bytes("# 主题\n".encode("gbk"))
    proc = run_check(broken_copy)
    assert proc.returncode != 0 and "gbk.md:1: " in proc.stdout and "UTF-8" in proc.stdout


def test_missing_corpus_dir(tmp_path):
    proc = run_check(tmp_path / "nope")
    assert proc.returncode != 0 and "not found" in proc.stdout


def test_source_parsing():
    s = parse_source("RoFormer: Enhanced Transformer with Rotary Position Embedding, 2021, arXiv:2104.09864")
    assert (s.title, s.year, s.arxiv) == ("RoFormer: Enhanced Transformer with Rotary Position Embedding", 2021,
                                          "2104.09864")
    assert parse_source("PyTorch docs, https://pytorch.org/docs/stable/nn.html").url.startswith("https://pytorch.org")


def test_real_corpus_copy_with_one_broken_file_fails(tmp_path):
    dst = tmp_path / "corpus"
    shutil.copytree(CORPUS, dst)
    target = next(p for p in sorted(dst.rglob("*.md")) if "syllabus" not in p.parts and p.name != "README.md")
    text = target.read_text(encoding="utf-8")
    target.write_text(text.replace("### 要点", "### 要 点", 1), encoding="utf-8")
    proc = run_check(dst)
    assert proc.returncode != 0
    assert any(target.name in l and "unknown section" in l for l in proc.stdout.splitlines())
