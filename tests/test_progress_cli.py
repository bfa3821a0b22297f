"""Progress in use: the mock interviewer asks due and weak entries first and records every graded
turn; `tutor grade` / `tutor interview` record to the profile; the `tutor progress` commands
(show, due, export, import, delete, profiles), all run as real subprocesses on a real SQLite file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import write_entry
from tutor.corpus import load_corpus
from tutor.grading import build_grader
from tutor.interview import Interview, InterviewConfig, select_entries
from tutor.progress import interview_priority, record_interview
from tutor.progress_sqlite import SqliteProgressStore
from tutor.progress_store import Attempt
from tutor.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
KPS = {
    "old-bad": ["预训练用下一个词预测作为目标", "微调在标注数据上继续训练全部参数", "指令微调让模型学会遵循指令"],
    "due-bad": ["梯度裁剪限制梯度范数的上界", "裁剪可以防止梯度爆炸", "常用的阈值是一点零"],
    "weak": ["权重衰减在损失中加入参数的平方惩罚", "AdamW 把权重衰减和梯度更新解耦", "偏置和归一化参数通常不做衰减"],
    "strong": ["残差连接让梯度可以直接传到浅层", "残差连接缓解深层网络的退化问题", "残差分支的输出与输入相加"],
    "new-a": ["混合精度用半精度做前向和反向", "主权重保存为单精度", "损失缩放防止梯度下溢"],
    "new-b": ["数据并行在每张卡上复制完整模型", "每步之后对梯度做全归约", "全局批大小等于单卡批大小乘卡数"],
}
GOOD = {  # natural, complete answers (a bare list of the key points reads as keyword stuffing)
    "old-bad": "预训练阶段用下一个词预测作为目标，在海量无标注文本上学习语言知识。微调是在标注数据上继续训练全部参数，"
               "让模型适配具体任务。而指令微调让模型学会遵循指令，这样它就能按用户的要求回答问题。",
    "strong": "残差连接让梯度可以直接传到浅层，因为恒等路径的导数是一，所以深层网络不容易梯度消失；它也缓解了深层网络的"
              "退化问题。具体做法是残差分支的输出与输入相加。",
}
QUESTIONS = {"old-bad": "预训练和微调有什么区别？", "due-bad": "什么是梯度裁剪？", "weak": "权重衰减是什么？",
             "strong": "残差连接有什么作用？", "new-a": "混合精度训练怎么做？", "new-b": "数据并行是怎么工作的？"}


@pytest.fixture
def corpus(tutor_env):
    root = tutor_env / "corpus"
    for n, (entry_id, kps) in enumerate(KPS.items()):
        write_entry(root / "1.训练" / f"topic{n % 2}.md", entry_id, QUESTIONS[entry_id], "；".join(kps) + "。",
                    key_points=kps, topic=f"主题{n % 2}")
    return load_corpus(root)


def _history(store: SqliteProgressStore, profile: str, now: datetime) -> None:
    """old-bad: failed 10 days ago (long overdue); due-bad: failed 2 days ago (due);
    weak: half-answered 6 hours ago (not due yet); strong: answered well yesterday; new-a/new-b: never."""
    store.add_attempt(profile, Attempt(entry_id="old-bad", score=1.0, created_at=now - timedelta(days=10)))
    store.add_attempt(profile, Attempt(entry_id="due-bad", score=2.0, created_at=now - timedelta(days=2)))
    store.add_attempt(profile, Attempt(entry_id="weak", score=5.0, created_at=now - timedelta(hours=6)))
    store.add_attempt(profile, Attempt(entry_id="strong", score=9.5, created_at=now - timedelta(days=1)))


def test_interviewer_asks_due_then_weak_then_new_entries_first(corpus, tutor_env):
    store = SqliteProgressStore(tutor_env / "progress.sqlite3")
    now = T0
    _history(store, "alice", now)
    assert [c.entry_id for c in store.due("alice", now)] == ["old-bad", "due-bad"]
    plain_first = set()
    for seed in range(6):
        pool = select_entries(corpus, InterviewConfig(seed=seed), priority=interview_priority(store, "alice", now))
        assert pool[:3] == ["old-bad", "due-bad", "weak"]  # least remembered due entry first, then weak
        assert set(pool[3:5]) == {"new-a", "new-b"} and pool[5] == "strong"
        plain_first.add(select_entries(corpus, InterviewConfig(seed=seed))[0])
    assert len(plain_first) > 1  # without the store the order is the seeded shuffle
    # another profile has no history: its order is the plain one
    assert select_entries(corpus, InterviewConfig(seed=1), priority=interview_priority(store, "bob", now)) == \
        select_entries(corpus, InterviewConfig(seed=1))

    grader = build_grader(Settings(grader="offline"), corpus)
    session = Interview.start_new(corpus, grader, InterviewConfig(n_questions=2, max_follow_ups=0, seed=4),
                                  priority=interview_priority(store, "alice", now))
    assert QUESTIONS["old-bad"] in session.opening().prompt
    reply = session.answer(GOOD["old-bad"])
    assert reply.grade.score >= 8.5
    assert record_interview(store, "alice", session, at=now) == 1
    assert QUESTIONS["due-bad"] in reply.prompt
    reply = session.answer("不知道")  # say, answered by voice (tutor interview --voice records "spoken")
    assert reply.finished and reply.grade.score == 0
    assert record_interview(store, "alice", session, input_mode="spoken", at=now) == 1
    assert record_interview(store, "alice", session, at=now) == 0  # idempotent
    recorded = [a for a in store.attempts("alice") if a.source == "interview"]
    assert [(a.entry_id, a.uid) for a in recorded] == [("old-bad", f"interview:{session.state.id}:0:0"),
                                                       ("due-bad", f"interview:{session.state.id}:1:0")]
    assert recorded[1].answer == "不知道" and recorded[0].topic == "1.训练 / 主题0"
    assert [a.input_mode for a in recorded] == ["typed", "spoken"]
    saved = store.sessions("alice")[0]
    assert saved.finished and saved.n_questions == 2 and "# 模拟面试报告" in saved.report

    # what the UI's 进度 tab shows
    from tutor.progress import progress_page

    markdown, figures = progress_page(store, "alice", corpus, now)
    assert "# 学习进度：alice" in markdown and "今日待复习（alice）：" in markdown and set(figures) == {
        "mastery", "timeline", "missed"}
    assert progress_page(store, "nobody", corpus, now)[1] == {}

    # the next interview reflects the answers: old-bad was answered well, due-bad failed again
    pool = select_entries(corpus, InterviewConfig(seed=0), priority=interview_priority(store, "alice", now))
    assert pool[:2] == ["due-bad", "weak"] and pool.index("old-bad") > pool.index("new-a")
    cards = {c.entry_id: c for c in store.cards("alice")}
    assert cards["old-bad"].reps == 2 and cards["old-bad"].due > now + timedelta(days=1)


# --- the CLI, as real processes -----------------------------------------------------------------

@pytest.fixture
def cli(corpus, tutor_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUTOR_", "OPENAI_"))}
    env.update(PYTHONPATH=str(ROOT), TUTOR_DATA_DIR=str(tutor_env / "data"), TUTOR_CORPUS_DIR=str(corpus.root),
               GRADIO_ANALYTICS_ENABLED="False")

    def run(*args: str, stdin: str | None = None, **extra_env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tutor.cli", *args], cwd=tutor_env, env={**env, **extra_env},
                              input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=120)
    run.data_dir = tutor_env / "data"
    return run


def test_cli_grade_records_to_the_profile(cli):
    r = cli("grade", "strong", "--answer", GOOD["strong"], "--profile", "alice")
    assert r.returncode == 0 and "已记录到学习进度（alice）" in r.stderr
    r = cli("grade", "weak", "--answer", "权重衰减就是正则化。", "--json", "--profile", "alice")
    assert r.returncode == 0 and json.loads(r.stdout)["entry_id"] == "weak"  # stdout stays pure JSON
    assert cli("grade", "weak", "--answer", "不记", "--profile", "alice", "--no-record").returncode == 0
    batch = cli.data_dir.parent / "b.jsonl"
    batch.write_text(json.dumps({"entry_id": "new-a", "answer": "用半精度"}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert cli("grade", "--batch", str(batch)).returncode == 0  # batch: no --profile, no recording
    assert cli("grade", "--batch", str(batch), "--profile", "alice").returncode == 0
    r = cli("grade", "new-b", "--answer", "数据并行复制模型", TUTOR_PROFILE="carol")
    assert "（carol）" in r.stderr

    store = SqliteProgressStore(cli.data_dir / "progress.sqlite3")
    assert [a.entry_id for a in store.attempts("alice")] == ["strong", "weak", "new-a"]
    assert [a.entry_id for a in store.attempts("carol")] == ["new-b"]
    assert store.attempts("default") == []
    a = store.attempts("alice")[0]
    assert a.score >= 8.5 and a.grader == "offline" and a.input_mode == "typed" and len(a.key_points) == 3


def test_cli_progress_show_due_export_import_delete(cli, tutor_env):
    store = SqliteProgressStore(cli.data_dir / "progress.sqlite3")
    now = datetime.now(timezone.utc)
    _history(store, "alice", now)

    r = cli("progress", "show", "--profile", "alice", "--plots", str(tutor_env / "plots"))
    assert r.returncode == 0 and "# 学习进度：alice" in r.stdout and "各主题掌握度" in r.stdout
    assert "今日待复习 **2** 道" in r.stdout and "1.训练 / 主题0" in r.stdout
    assert sorted(p.name for p in (tutor_env / "plots").iterdir()) == ["mastery.png", "missed.png", "timeline.png"]
    shown = json.loads(cli("progress", "show", "--profile", "alice", "--json").stdout)
    assert shown["attempts"] == 4 and shown["due"] == 2 and shown["weak"] == 3

    r = cli("progress", "due", "--profile", "alice")
    assert r.returncode == 0 and "今日待复习（alice）：2 道" in r.stdout
    assert r.stdout.index(QUESTIONS["old-bad"]) < r.stdout.index(QUESTIONS["due-bad"])
    assert QUESTIONS["weak"] not in r.stdout
    due = json.loads(cli("progress", "due", "--profile", "alice", "--json").stdout)
    assert [d["entry_id"] for d in due["due"]] == ["old-bad", "due-bad"]
    assert "没有到期的题目" in cli("progress", "due").stdout  # the default profile has nothing

    out = tutor_env / "exports" / "alice.json"
    r = cli("progress", "export", "--profile", "alice", "--out", str(out))
    assert r.returncode == 0 and "4 次作答" in r.stdout
    assert json.loads(out.read_text(encoding="utf-8"))["format"] == "llm-interview-tutor.progress"
    other = {"TUTOR_DATA_DIR": str(tutor_env / "other-machine")}
    r = cli("progress", "import", str(out), **other)
    assert r.returncode == 0 and "新增 4 次作答" in r.stdout
    assert "新增 0 次作答（4 次已存在" in cli("progress", "import", str(out), **other).stdout
    imported = json.loads(cli("progress", "show", "--profile", "alice", "--json", **other).stdout)
    assert imported == shown
    assert cli("progress", "import", str(out), "--profile", "bob", **other).returncode == 0
    assert "bob\t作答 4 次" in cli("progress", "profiles", **other).stdout

    bad = tutor_env / "bad.json"
    bad.write_text('{"format": "something else"}', encoding="utf-8")
    r = cli("progress", "import", str(bad))
    assert r.returncode == 2 and "不是 tutor progress export 导出的进度文件" in r.stderr

    interviews = cli.data_dir / "interviews"
    interviews.mkdir(parents=True)
    (interviews / "s-1.json").write_text("{}", encoding="utf-8")
    (interviews / "s-1.md").write_text("# 报告", encoding="utf-8")
    (interviews / "s-2.json").write_text("{}", encoding="utf-8")  # another profile's session
    from tutor.progress_store import SessionRecord

    store.save_session("alice", SessionRecord(id="s-1", created_at=now, updated_at=now))
    r = cli("progress", "delete", "--profile", "alice")  # no terminal to confirm on
    assert r.returncode == 2 and "--yes" in r.stderr and len(store.attempts("alice")) == 4
    r = cli("progress", "delete", "--profile", "alice", "--yes")
    assert r.returncode == 0 and "已删除 alice：4 次作答" in r.stdout and "2 个面试文件" in r.stdout
    assert store.attempts("alice") == [] and not (interviews / "s-1.json").exists()
    assert (interviews / "s-2.json").exists()
    assert "没有名为 alice 的用户档案" in cli("progress", "delete", "--profile", "alice", "--yes").stdout


def test_cli_interview_asks_due_entries_first_and_records(cli):
    store = SqliteProgressStore(cli.data_dir / "progress.sqlite3")
    _history(store, "alice", datetime.now(timezone.utc))
    r = cli("interview", "--profile", "alice", "-n", "2", "--follow-ups", "0", "--seed", "2", stdin="不知道\n不知道\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.index(QUESTIONS["old-bad"]) < r.stdout.index(QUESTIONS["due-bad"])
    assert "第 1/2 题：" + QUESTIONS["old-bad"] in r.stdout and "# 模拟面试报告" in r.stdout
    recorded = [a for a in store.attempts("alice") if a.source == "interview"]
    assert [(a.entry_id, a.score) for a in recorded] == [("old-bad", 0.0), ("due-bad", 0.0)]
    session = store.sessions("alice")[0]
    assert session.finished and session.report.startswith("# 模拟面试报告")
    assert (cli.data_dir / "interviews" / f"{session.id}.json").is_file()
    # --no-record neither reads nor writes progress
    r = cli("interview", "--profile", "alice", "--no-record", "-n", "1", "--seed", "2", stdin="跳过\n")
    assert r.returncode == 0 and len(store.sessions("alice")) == 1


def test_cli_unknown_database_scheme(cli):
    r = cli("progress", "show", TUTOR_DATABASE_URL="postgresql://db.example/tutor")
    assert r.returncode == 2 and "只支持 SQLite" in r.stderr and "sqlite:///" in r.stderr
    r = cli("grade", "weak", "--answer", "权重衰减", TUTOR_DATABASE_URL="mysql://db/tutor")
    assert r.returncode == 0 and "得分" in r.stdout and "不会记录到学习进度" in r.stderr  # grading goes on
    r = cli("progress")
    assert r.returncode == 2 and "用法" in r.stderr
