"""The progress store: FSRS scheduling over simulated days, export/import, concurrency (8 threads),
a process killed with SIGKILL mid-write, migrations from the version-1 schema, URL parsing, profiles,
statistics and plots.

Everything runs on real SQLite files in tmp_path; times are explicit `now` datetimes (no sleeping).
The interview integration and the `tutor progress` CLI are tested in `tests/test_progress_cli.py`.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fsrs import Rating

from tests.conftest import make_corpus
from tutor.corpus import load_corpus
from tutor.progress import current_profile, open_store, parse_database_url, profile_for_request
from tutor.progress_schema import LATEST_VERSION, current_version, migrate
from tutor.progress_sqlite import SqliteProgressStore
from tutor.progress_store import Attempt, ProfileExport, ProgressStoreError, SessionRecord, validate_profile
from tutor.review import rating_for, replay
from tutor.settings import Settings

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parent.parent


def kp(*verdicts: str, prefix: str = "要点") -> list[dict]:
    return [{"index": i, "key_point": f"{prefix}{i}", "verdict": v} for i, v in enumerate(verdicts)]


@pytest.fixture
def store(tmp_path) -> SqliteProgressStore:
    return SqliteProgressStore(tmp_path / "progress.sqlite3")


# --- rating and scheduling --------------------------------------------------------------------

@pytest.mark.parametrize("score,rating", [(0, Rating.Again), (3.9, Rating.Again), (4.0, Rating.Hard),
                                          (5.9, Rating.Hard), (6.0, Rating.Good), (8.4, Rating.Good),
                                          (8.5, Rating.Easy), (10, Rating.Easy)])
def test_score_to_rating_mapping(score, rating):
    assert rating_for(score) == rating


def test_bad_answers_come_back_sooner_than_good_ones_over_simulated_days(store):
    store.add_attempt("p", Attempt(entry_id="bad", score=2.0, created_at=T0))
    store.add_attempt("p", Attempt(entry_id="good", score=9.5, created_at=T0))
    store.add_attempt("p", Attempt(entry_id="improves", score=3.0, created_at=T0))
    cards = {c.entry_id: c for c in store.cards("p")}
    assert cards["bad"].due < cards["good"].due
    assert [c.entry_id for c in store.due("p", T0 + timedelta(days=1))] == ["bad", "improves"]
    assert store.due("p", T0 + timedelta(days=1) - timedelta(seconds=1)) == []  # due <= now, not before

    # 120 days: every morning answer whatever is due: "bad" always badly, "good" always well,
    # "improves" badly for the first three reviews and well afterwards.
    reviews = {"bad": [], "good": [], "improves": []}
    for day in range(1, 121):
        now = T0 + timedelta(days=day)
        for card in store.due("p", now):
            n = len(reviews[card.entry_id])
            score = {"bad": 2.0, "good": 9.5, "improves": 3.0 if n < 3 else 9.0}[card.entry_id]
            assert store.add_attempt("p", Attempt(entry_id=card.entry_id, score=score, created_at=now))
            reviews[card.entry_id].append(day)
    assert len(reviews["bad"]) >= 100  # back every day
    assert 1 <= len(reviews["good"]) <= 4  # 8 days, then months
    gaps_good = [b - a for a, b in zip([0] + reviews["good"], reviews["good"])]
    assert gaps_good == sorted(gaps_good) and gaps_good[-1] > 30
    gaps_improves = [b - a for a, b in zip([0] + reviews["improves"], reviews["improves"])]
    assert gaps_improves[:3] == [1, 1, 1] and gaps_improves[-1] > 7  # once answered well, it spaces out
    cards = {c.entry_id: c for c in store.cards("p")}
    assert cards["bad"].reps == len(reviews["bad"]) + 1 and cards["bad"].last_rating == Rating.Again
    assert cards["good"].due > cards["improves"].due > cards["bad"].due


def test_attempt_recorded_out_of_order_gives_the_same_card_as_in_order(tmp_path):
    in_order = SqliteProgressStore(tmp_path / "a.sqlite3")
    shuffled = SqliteProgressStore(tmp_path / "b.sqlite3")
    history = [(0, 3.0), (1, 7.0), (4, 9.0), (12, 5.0)]
    for day, score in history:
        in_order.add_attempt("p", Attempt(entry_id="e", score=score, created_at=T0 + timedelta(days=day), uid=f"u{day}"))
    for day, score in [history[2], history[0], history[3], history[1]]:
        shuffled.add_attempt("p", Attempt(entry_id="e", score=score, created_at=T0 + timedelta(days=day), uid=f"u{day}"))
    assert shuffled.cards("p") == in_order.cards("p")
    assert in_order.cards("p")[0].reps == 4 and in_order.cards("p")[0].last_score == 5.0


def test_follow_up_attempts_are_kept_but_do_not_move_the_schedule(store):
    store.add_attempt("p", Attempt(entry_id="e", score=9.0, created_at=T0))
    before = store.cards("p")
    assert store.add_attempt("p", Attempt(entry_id="e", score=0.0, focus=[1], key_points=kp("missed"),
                                          created_at=T0 + timedelta(hours=1)))
    assert store.cards("p") == before
    assert len(store.attempts("p", "e")) == 2
    stats = store.stats("p", now=T0)
    assert stats.entries[0].latest_score == 9.0 and stats.missed_points[0].missed == 1


def test_recording_the_same_uid_twice_adds_nothing(store):
    a = Attempt(entry_id="e", score=5.0, created_at=T0, uid="interview:s1:0:0")
    assert store.add_attempt("p", a) is True
    assert store.add_attempt("p", a) is False
    assert len(store.attempts("p")) == 1 and store.cards("p")[0].reps == 1
    assert store.add_attempt("q", a) is True  # uids are unique per profile


# --- export / import / delete -----------------------------------------------------------------

def _populate(store, corpus) -> None:
    plan = [("scaled-attention", 0, 3.0, kp("missed", "partial", "covered")),
            ("scaled-attention", 1, 7.5, kp("covered", "partial", "covered")),
            ("kv-cache", 0, 9.0, kp("covered", "covered", "covered")),
            ("warmup", 2, 4.5, kp("missed", "missed", "covered")),
            ("gone-entry", 3, 6.0, kp("covered", "missed", "covered"))]
    for entry_id, day, score, verdicts in plan:
        store.add_attempt("alice", Attempt(entry_id=entry_id, score=score, key_points=verdicts, answer=f"回答{day}",
                                           created_at=T0 + timedelta(days=day, hours=day), topic="旧主题 / 已删"))
    store.add_attempt("alice", Attempt(entry_id="warmup", score=0.0, focus=[0], key_points=kp("missed"),
                                       input_mode="spoken", created_at=T0 + timedelta(days=2, hours=3)))
    store.save_session("alice", SessionRecord(id="20260302-090000-abcdef", created_at=T0, updated_at=T0,
                                              finished=True, n_questions=2, mean_score=5.0,
                                              state={"id": "20260302-090000-abcdef"}, report="# 模拟面试报告\n"))


def test_export_then_import_into_a_fresh_store_gives_identical_statistics(tmp_path):
    corpus = load_corpus(make_corpus(tmp_path / "corpus"))
    source = SqliteProgressStore(tmp_path / "one" / "progress.sqlite3")
    _populate(source, corpus)
    now = T0 + timedelta(days=5)
    file = tmp_path / "alice.json"
    file.write_text(source.export("alice").model_dump_json(indent=1), encoding="utf-8")

    fresh = SqliteProgressStore(tmp_path / "two" / "progress.sqlite3")
    result = fresh.import_profile(ProfileExport.model_validate_json(file.read_text(encoding="utf-8")))
    assert (result.profile, result.attempts_added, result.attempts_skipped, result.sessions) == ("alice", 6, 0, 1)
    expected = source.stats("alice", corpus, now)
    assert fresh.stats("alice", corpus, now) == expected
    assert fresh.cards("alice") == source.cards("alice")
    assert fresh.sessions("alice") == source.sessions("alice")
    assert [a.model_dump() for a in fresh.attempts("alice")] == [a.model_dump() for a in source.attempts("alice")]
    # the numbers themselves, so "identical" is not identical emptiness
    assert expected.attempts == 6 and expected.answered_entries == 4 and expected.due == 2
    assert {e.entry_id for e in expected.entries if e.is_due} == {"scaled-attention", "warmup"}
    topics = {t.topic: t for t in expected.topics}
    assert topics["1.基础 / 测试主题"].mastery == pytest.approx((7.5 + 9.0) / 2)
    assert topics["1.基础 / 测试主题"].coverage == 1.0 and topics["2.训练 / 测试主题"].coverage == 1.0
    assert topics["旧主题 / 已删"].entries == 0 and topics["旧主题 / 已删"].mastery == 6.0

    # importing again adds nothing; importing under another name gives the same numbers
    again = fresh.import_profile(ProfileExport.model_validate_json(file.read_text(encoding="utf-8")))
    assert (again.attempts_added, again.attempts_skipped) == (0, 6)
    assert fresh.stats("alice", corpus, now) == expected
    fresh.import_profile(source.export("alice"), profile="bob")
    assert fresh.stats("bob", corpus, now).model_dump(exclude={"profile"}) == expected.model_dump(exclude={"profile"})


def test_delete_profile_removes_only_that_profile(store):
    _populate(store, None)
    store.add_attempt("bob", Attempt(entry_id="kv-cache", score=8.0, created_at=T0))
    result = store.delete_profile("alice")
    assert result.existed and result.attempts == 6 and result.cards == 4 and result.sessions == ["20260302-090000-abcdef"]
    assert store.attempts("alice") == [] and store.cards("alice") == [] and store.sessions("alice") == []
    assert [p.name for p in store.profiles()] == ["bob"] and len(store.attempts("bob")) == 1
    assert store.delete_profile("alice").existed is False


def test_delete_profile_also_removes_its_interview_files_and_nothing_else(tmp_path, store):
    from tutor.progress import delete_profile

    interviews = tmp_path / "data" / "interviews"
    interviews.mkdir(parents=True)
    for name in ("s-1.json", "s-1.md", "s-2.json"):
        (interviews / name).write_text("{}", encoding="utf-8")
    victim = tmp_path / "victim.json"
    victim.write_text("{}", encoding="utf-8")
    for session_id in ("s-1", "../../victim"):  # an imported id is never used as a path
        store.save_session("alice", SessionRecord(id=session_id, created_at=T0, updated_at=T0))
    result = delete_profile(store, "alice", tmp_path / "data")
    assert result.files == 2 and sorted(result.sessions) == ["../../victim", "s-1"]
    assert victim.exists() and (interviews / "s-2.json").exists() and not (interviews / "s-1.md").exists()


def test_an_unavailable_store_leaves_the_interview_order_alone(tmp_path):
    import shutil

    from tutor.interview import InterviewConfig, select_entries
    from tutor.progress import interview_priority

    corpus = load_corpus(make_corpus(tmp_path / "corpus"))
    broken = SqliteProgressStore(tmp_path / "gone" / "progress.sqlite3")
    shutil.rmtree(tmp_path / "gone")
    with pytest.raises(ProgressStoreError):
        broken.cards("p")
    plain = select_entries(corpus, InterviewConfig(seed=3))
    assert select_entries(corpus, InterviewConfig(seed=3), priority=interview_priority(broken, "p", T0)) == plain


# --- concurrency and crashes ------------------------------------------------------------------

def test_eight_threads_writing_at_once_lose_no_attempt(store, tmp_path):
    per_thread, entries = 40, ["e0", "e1", "e2", "e3", "e4"]
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        # half the threads share the store object, half open their own on the same file
        target = store if n % 2 else SqliteProgressStore(tmp_path / "progress.sqlite3")
        try:
            barrier.wait()
            for i in range(per_thread):
                target.add_attempt("p", Attempt(entry_id=entries[(n + i) % 5], score=(n + i) % 11, uid=f"t{n}-{i}",
                                                created_at=T0 + timedelta(minutes=i, seconds=n)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    attempts = store.attempts("p")
    assert len(attempts) == 8 * per_thread
    assert {a.uid for a in attempts} == {f"t{n}-{i}" for n in range(8) for i in range(per_thread)}
    cards = store.cards("p")
    assert sum(c.reps for c in cards) == 8 * per_thread  # no card update lost either
    for c in cards:
        assert c == replay(c.entry_id, [a for a in attempts if a.entry_id == c.entry_id])
    assert store.integrity_check() == "ok"


CHILD = r"""
import sys
from datetime import datetime, timedelta, timezone
from tutor.progress_sqlite import SqliteProgressStore
from tutor.progress_store import Attempt

store = SqliteProgressStore(sys.argv[1])
round_no = int(sys.argv[2])
t0 = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
for i in range(100000):
    uid = f"r{round_no}-{i}"
    answer = (uid + "。") * 150000  # about 1.5 MB: each write takes a while
    print("begin", uid, flush=True)
    store.add_attempt("p", Attempt(entry_id=f"e{i % 3}", score=i % 11, answer=answer, uid=uid,
                                   key_points=[{"index": 0, "key_point": "k", "verdict": "covered"}],
                                   created_at=t0 + timedelta(days=round_no, minutes=i)))
    print("done", uid, flush=True)
"""


def test_process_killed_mid_write_leaves_a_consistent_database(tmp_path):
    db = tmp_path / "progress.sqlite3"
    SqliteProgressStore(db)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    committed: set[str] = set()
    in_flight: list[str] = []
    for round_no in range(5):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(round_no)], stdout=subprocess.PIPE,
                                 text=True, cwd=tmp_path, env=env)
        done_this_round = 0
        last = None
        for line in child.stdout:
            kind, uid = line.split()
            if kind == "done":
                committed.add(uid)
                done_this_round += 1
            elif done_this_round >= 2 + round_no:  # a "begin": the child is inside add_attempt now
                last = uid
                os.kill(child.pid, signal.SIGKILL)
                break
        child.wait(timeout=30)
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        if last is not None:
            in_flight.append(last)
    assert len(in_flight) == 5  # every kill landed between "begin" and "done": mid-write

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    store = SqliteProgressStore(db)
    attempts = store.attempts("p")
    uids = {a.uid for a in attempts}
    assert committed <= uids  # every committed attempt is there
    assert uids - committed <= set(in_flight)  # at most the in-flight one (committed just before the kill)
    for a in attempts:  # and none is half written
        assert a.answer == (a.uid + "。") * 150000 and a.key_points[0]["verdict"] == "covered"
    for c in store.cards("p"):  # attempt and card update committed together
        assert c == replay(c.entry_id, [a for a in attempts if a.entry_id == c.entry_id])
    assert sum(c.reps for c in store.cards("p")) == len(attempts)
    assert store.add_attempt("p", Attempt(entry_id="e0", score=5, created_at=T0 + timedelta(days=30)))


# --- migrations -------------------------------------------------------------------------------

def _version_1_database(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=1) == 1
    conn.execute("INSERT INTO profiles VALUES ('alice', '2026-01-01T00:00:00.000000+00:00')")
    conn.execute("INSERT INTO profiles VALUES ('bob', '2026-01-01T00:00:00.000000+00:00')")
    rows = [("alice", "rope", 3.0, 0), ("alice", "rope", 8.0, 2), ("alice", "kv-cache", 9.0, 1), ("bob", "rope", 5.0, 0)]
    for profile, entry_id, score, day in rows:
        conn.execute("INSERT INTO attempts (profile, entry_id, answer, score, key_points, grader, created_at) "
                     "VALUES (?, ?, ?, ?, ?, 'offline', ?)",
                     (profile, entry_id, f"{entry_id} 的回答", score, json.dumps(kp("covered", "missed")),
                      (T0 + timedelta(days=day)).isoformat(timespec="microseconds")))
    conn.execute("INSERT INTO interview_sessions (profile, id, created_at, updated_at, finished, n_questions, state) "
                 "VALUES ('alice', 's1', '2026-01-01T00:00:00.000000+00:00', '2026-01-01T00:00:00.000000+00:00', 1, 1, '{}')")
    columns = [r[1] for r in conn.execute("PRAGMA table_info(attempts)")]
    assert "uid" not in columns and "input_mode" not in columns  # really the first schema
    conn.close()


def test_migrates_a_version_1_database_to_the_latest_schema(tmp_path):
    db = tmp_path / "old.sqlite3"
    _version_1_database(db)
    store = SqliteProgressStore(db)
    conn = sqlite3.connect(db)
    assert [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2, 3]
    assert LATEST_VERSION == 3 and conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    alice = store.attempts("alice")
    assert [(a.entry_id, a.score) for a in alice] == [("rope", 3.0), ("kv-cache", 9.0), ("rope", 8.0)]
    assert all(len(a.uid) == 32 and a.input_mode == "typed" and a.source == "migrated" for a in alice)
    assert len({a.uid for a in alice + store.attempts("bob")}) == 4
    # migration 2 replayed the old attempts into review cards
    cards = {c.entry_id: c for c in store.cards("alice")}
    assert cards["rope"].reps == 2 and cards["rope"].last_score == 8.0
    assert cards["rope"] == replay("rope", [a for a in alice if a.entry_id == "rope"])
    assert [c.entry_id for c in store.due("bob", T0 + timedelta(days=1))] == ["rope"]
    assert store.sessions("alice")[0].id == "s1"
    # and the migrated store works as a new one does
    assert store.add_attempt("alice", Attempt(entry_id="rope", score=9.0, created_at=T0 + timedelta(days=9)))
    assert store.stats("alice", now=T0 + timedelta(days=9)).answered_entries == 2


def test_failed_migration_step_leaves_the_previous_version(tmp_path):
    db = tmp_path / "old.sqlite3"
    _version_1_database(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE review_cards (x INTEGER)")  # makes step 2 fail half-way through
    conn.close()
    with pytest.raises(ProgressStoreError):
        SqliteProgressStore(db)
    conn = sqlite3.connect(db, isolation_level=None)
    assert current_version(conn) == 1
    assert conn.execute("SELECT count(*) FROM attempts").fetchone()[0] == 4
    conn.execute("DROP TABLE review_cards")
    conn.close()
    assert len(SqliteProgressStore(db).attempts("alice")) == 3  # fixed, it migrates


def test_a_database_from_a_newer_version_is_refused_untouched(tmp_path):
    db = tmp_path / "new.sqlite3"
    SqliteProgressStore(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("INSERT INTO schema_version VALUES (99, 'future', '2030-01-01')")
    conn.close()
    with pytest.raises(ProgressStoreError, match="高于本程序支持的 3"):
        SqliteProgressStore(db)


# --- URL, settings, profiles ------------------------------------------------------------------

def test_database_url_forms_and_unknown_schemes(tmp_path):
    assert parse_database_url(None, tmp_path) == tmp_path / "progress.sqlite3"
    assert parse_database_url("sqlite:///rel/p.db", tmp_path) == Path("rel/p.db")
    assert parse_database_url("sqlite:////abs/p.db", tmp_path) == Path("/abs/p.db")
    assert parse_database_url(str(tmp_path / "x.db"), tmp_path) == tmp_path / "x.db"
    for bad in ("postgresql://user@db/tutor", "mysql://h/db", "redis://localhost"):
        with pytest.raises(ValueError) as info:
            parse_database_url(bad, tmp_path)
        assert bad.split("://")[0] in str(info.value) and "sqlite:///" in str(info.value) and "SQLite" in str(info.value)
    for bad in ("sqlite://", "sqlite:///:memory:"):
        with pytest.raises(ValueError):
            parse_database_url(bad, tmp_path)


def test_open_store_follows_settings(tutor_env, monkeypatch):
    store = open_store(Settings())
    assert store.path == Settings().data_dir / "progress.sqlite3" and store.path.is_file()
    monkeypatch.setenv("TUTOR_DATABASE_URL", f"sqlite:///{tutor_env / 'elsewhere.db'}")
    assert open_store(Settings()).path == tutor_env / "elsewhere.db" and (tutor_env / "elsewhere.db").is_file()
    monkeypatch.setenv("TUTOR_DATABASE_URL", "postgresql://db/tutor")
    with pytest.raises(ValueError, match="只支持 SQLite"):
        open_store(Settings())


def test_profiles_from_login_names_and_settings(tutor_env, monkeypatch, store):
    assert current_profile(Settings()) == "default"
    assert profile_for_request(None, Settings()) == "default" and profile_for_request("  ", Settings()) == "default"
    assert profile_for_request("alice", Settings()) == "alice"
    monkeypatch.setenv("TUTOR_PROFILE", "张三")
    assert current_profile(Settings()) == "张三" and current_profile(Settings(), "bob") == "bob"
    assert profile_for_request(None, Settings()) == "张三" and profile_for_request("carol", Settings()) == "carol"
    for bad in ("", "a/b", "x" * 65, "tab\there"):
        with pytest.raises(ValueError):
            validate_profile(bad)
    # each login sees only its own progress
    store.add_attempt(profile_for_request("alice"), Attempt(entry_id="e", score=1.0, created_at=T0))
    store.add_attempt(profile_for_request("bob"), Attempt(entry_id="f", score=9.0, created_at=T0))
    later = T0 + timedelta(days=1)
    assert [c.entry_id for c in store.due("alice", later)] == ["e"] and store.due("bob", later) == []
    assert store.stats("bob", now=later).entries[0].entry_id == "f"


# --- statistics and plots ---------------------------------------------------------------------

def test_statistics_definitions(tmp_path, store):
    corpus = load_corpus(make_corpus(tmp_path / "corpus"))
    _populate(store, corpus)
    s = store.stats("alice", corpus, T0 + timedelta(days=5))
    assert [(d.attempts, d.mean_score) for d in s.by_day] == [(2, 6.0), (1, 7.5), (1, 4.5), (1, 6.0)]
    assert s.mean_latest == pytest.approx((7.5 + 9.0 + 4.5 + 6.0) / 4, abs=0.01)
    assert (s.mastered, s.weak) == (1, 1)
    first = s.missed_points[0]  # warmup's point 0: missed twice (once in a follow-up), still missed
    assert (first.entry_id, first.key_point, first.missed, first.asked, first.last_verdict) == ("warmup", "要点0", 2, 2, "missed")
    covered_last = [p for p in s.missed_points if p.last_verdict == "covered"]
    assert covered_last and s.missed_points.index(covered_last[0]) > s.missed_points.index(first)


def test_progress_plots_are_written_as_png(tmp_path, store):
    from tutor.progress_plots import cjk_font, progress_figures, write_progress_pngs
    from tutor.progress_stats import compute_stats

    corpus = load_corpus(make_corpus(tmp_path / "corpus"))
    _populate(store, corpus)
    # symbols the CJK font lacks (U+2212 minus, superscript T) must fall back, not turn into boxes
    store.add_attempt("alice", Attempt(entry_id="kv-cache", score=9.0, focus=[0], created_at=T0 + timedelta(days=4),
                                       key_points=[{"key_point": "雅可比 J = diag(p) − p pᵀ", "verdict": "missed"}]))
    stats = store.stats("alice", corpus, T0 + timedelta(days=5))
    assert any("−" in p.key_point for p in stats.missed_points)
    figs = progress_figures(stats)
    assert len(figs["mastery"].axes[0].patches) == 3  # three topics answered
    assert len(figs["missed"].axes[0].patches) == 2 * len(stats.missed_points)  # missed + partial stacks
    assert cjk_font() is not None, "no CJK font: install fonts-wqy-zenhei (scripts/setup-tests.sh does)"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph would warn
        paths = write_progress_pngs(stats, tmp_path / "plots")
        empty = write_progress_pngs(compute_stats("nobody", [], []), tmp_path / "empty")
    for p in paths + empty:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert [p.name for p in paths] == ["mastery.png", "timeline.png", "missed.png"]
