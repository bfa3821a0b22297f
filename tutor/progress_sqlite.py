"""The SQLite progress store: one local file, safe under threads and processes.

    store = SqliteProgressStore(data_dir / "progress.sqlite3")
    store.add_attempt("default", attempt)

Design.
- One connection per operation, opened and closed inside the call. A Gradio server runs handlers
  on a thread pool and the CLI runs in its own process; short-lived connections mean no connection
  is ever shared between threads and nothing holds the file between calls. Opening costs well under
  a millisecond, which is nothing next to grading an answer.
- WAL journal (readers never block the writer, the writer never blocks readers), `busy_timeout` so
  concurrent writers queue instead of failing with "database is locked", `foreign_keys` on,
  `synchronous` left at FULL: one fsync per graded answer costs nothing at this write rate and a
  committed attempt then survives a power cut, not only a killed process.
- Every write is one `BEGIN IMMEDIATE` transaction that takes the write lock up front, so the
  read-modify-write of a review card (read the card, apply the new rating, write it back) cannot
  interleave with another writer: eight threads recording at once lose nothing. An attempt and its
  card update commit together or not at all; a process killed mid-write leaves the previous state.
- An attempt older than the entry's card (an import, a late recording) rebuilds the card by
  replaying the entry's history instead of applying the rating out of order.

Trade-off: SQLite serialises writers; that is fine for one machine and a handful of users. A
deployment with several app instances sharing users would implement `ProgressStore` on a server
database (see `tutor/progress.py`, which parses the URL).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator

from tutor.progress_schema import migrate, upsert_card
from tutor.progress_stats import ProgressStats, compute_stats
from tutor.progress_store import (Attempt, DeleteResult, ImportResult, ProfileExport, ProfileSummary,
                                  ProgressStoreError, ReviewCard, SessionRecord, iso, now_utc,
                                  validate_profile)
from tutor.review import replay, review

ATTEMPT_COLUMNS = ("uid", "entry_id", "answer", "score", "key_points", "grader", "fell_back", "input_mode",
                   "source", "session_id", "focus", "topic", "created_at")


class SqliteProgressStore:
    """`ProgressStore` on a local SQLite file (created, and migrated to the latest schema, on open)."""

    def __init__(self, path: str | Path, busy_timeout_s: float = 15.0):
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
        except (OSError, sqlite3.Error) as exc:
            raise ProgressStoreError(f"无法打开进度数据库 {self.path}：{exc}") from exc
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ProgressStoreError(f"进度数据库 {self.path} 无法切换到 WAL 模式（当前 {mode}）")
            migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise ProgressStoreError(f"进度数据库 {self.path} 无法使用：{exc}") from exc
        finally:
            conn.close()

    def describe(self) -> str:
        return f"SQLite：{self.path}"

    # ---- connections -----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @contextmanager
    def _tx(self, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction on a fresh connection: IMMEDIATE for writes, a consistent snapshot for reads."""
        try:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise ProgressStoreError(f"进度数据库暂时无法访问（{exc}）：{self.path}") from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    # ---- profiles --------------------------------------------------------------------------------

    @staticmethod
    def _ensure(conn: sqlite3.Connection, profile: str) -> str:
        profile = validate_profile(profile)
        conn.execute("INSERT OR IGNORE INTO profiles (name, created_at) VALUES (?, ?)", (profile, iso(now_utc())))
        return profile

    def ensure_profile(self, profile: str) -> None:
        with self._tx(write=True) as conn:
            self._ensure(conn, profile)

    def profiles(self) -> list[ProfileSummary]:
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT p.name, p.created_at, "
                "(SELECT count(*) FROM attempts a WHERE a.profile = p.name), "
                "(SELECT count(DISTINCT entry_id) FROM attempts a WHERE a.profile = p.name), "
                "(SELECT count(*) FROM interview_sessions s WHERE s.profile = p.name) "
                "FROM profiles p ORDER BY p.name").fetchall()
        return [ProfileSummary(name=r[0], created_at=datetime.fromisoformat(r[1]), attempts=r[2], entries=r[3],
                               sessions=r[4]) for r in rows]

    # ---- attempts and cards ----------------------------------------------------------------------

    @staticmethod
    def _insert_attempt(conn: sqlite3.Connection, profile: str, a: Attempt) -> bool:
        values = (a.uid, a.entry_id, a.answer, a.score, json.dumps(a.key_points, ensure_ascii=False), a.grader,
                  int(a.fell_back), a.input_mode, a.source, a.session_id,
                  json.dumps(a.focus) if a.focus is not None else None, a.topic, iso(a.created_at))
        cur = conn.execute(f"INSERT OR IGNORE INTO attempts (profile, {', '.join(ATTEMPT_COLUMNS)}) "
                           f"VALUES (?, {', '.join('?' * len(ATTEMPT_COLUMNS))})", (profile, *values))
        return cur.rowcount == 1

    @staticmethod
    def _attempt(row: sqlite3.Row | tuple) -> Attempt:
        (row_id, uid, entry_id, answer, score, key_points, grader, fell_back, input_mode, source, session_id,
         focus, topic, created_at) = row
        return Attempt(id=row_id, uid=uid, entry_id=entry_id, answer=answer, score=score,
                       key_points=json.loads(key_points), grader=grader, fell_back=bool(fell_back),
                       input_mode=input_mode, source=source, session_id=session_id,
                       focus=json.loads(focus) if focus is not None else None, topic=topic,
                       created_at=datetime.fromisoformat(created_at))

    def _select_attempts(self, conn: sqlite3.Connection, profile: str, entry_id: str | None = None) -> list[Attempt]:
        sql = f"SELECT id, {', '.join(ATTEMPT_COLUMNS)} FROM attempts WHERE profile = ?"
        args: tuple = (profile,)
        if entry_id is not None:
            sql += " AND entry_id = ?"
            args += (entry_id,)
        return [self._attempt(r) for r in conn.execute(sql + " ORDER BY created_at, id", args)]

    @staticmethod
    def _card(row: tuple) -> ReviewCard:
        entry_id, due, state, stability, difficulty, last_review, reps, last_score, last_rating, card = row
        return ReviewCard(entry_id=entry_id, due=datetime.fromisoformat(due), state=state, stability=stability,
                          difficulty=difficulty,
                          last_review=datetime.fromisoformat(last_review) if last_review else None,
                          reps=reps, last_score=last_score, last_rating=last_rating, card=json.loads(card))

    _CARD_SQL = ("SELECT entry_id, due, state, stability, difficulty, last_review, reps, last_score, last_rating, "
                 "card FROM review_cards WHERE profile = ?")

    def _rebuild_card(self, conn: sqlite3.Connection, profile: str, entry_id: str) -> None:
        card = replay(entry_id, self._select_attempts(conn, profile, entry_id))
        if card is None:
            conn.execute("DELETE FROM review_cards WHERE profile = ? AND entry_id = ?", (profile, entry_id))
        else:
            upsert_card(conn, profile, card)

    def _schedule(self, conn: sqlite3.Connection, profile: str, a: Attempt) -> None:
        row = conn.execute(self._CARD_SQL + " AND entry_id = ?", (profile, a.entry_id)).fetchone()
        card = self._card(row) if row else None
        if card is not None and card.last_review is not None and a.created_at < card.last_review:
            self._rebuild_card(conn, profile, a.entry_id)  # arrived out of order: replay the history
        else:
            upsert_card(conn, profile, review(card, a.entry_id, a.score, a.created_at))

    def add_attempt(self, profile: str, attempt: Attempt) -> bool:
        with self._tx(write=True) as conn:
            profile = self._ensure(conn, profile)
            if not self._insert_attempt(conn, profile, attempt):
                return False
            if attempt.scheduled:
                self._schedule(conn, profile, attempt)
            return True

    def attempts(self, profile: str, entry_id: str | None = None) -> list[Attempt]:
        with self._tx(write=False) as conn:
            return self._select_attempts(conn, profile, entry_id)

    def cards(self, profile: str) -> list[ReviewCard]:
        with self._tx(write=False) as conn:
            return [self._card(r) for r in conn.execute(self._CARD_SQL + " ORDER BY due, entry_id", (profile,))]

    def due(self, profile: str, now: datetime | None = None, limit: int | None = None) -> list[ReviewCard]:
        sql = self._CARD_SQL + " AND due <= ? ORDER BY due, entry_id"
        args: tuple = (profile, iso(now or now_utc()))
        if limit is not None:
            sql += " LIMIT ?"
            args += (int(limit),)
        with self._tx(write=False) as conn:
            return [self._card(r) for r in conn.execute(sql, args)]

    # ---- interview sessions ----------------------------------------------------------------------

    @staticmethod
    def _upsert_session(conn: sqlite3.Connection, profile: str, s: SessionRecord) -> None:
        conn.execute(
            "INSERT INTO interview_sessions (profile, id, created_at, updated_at, finished, n_questions, mean_score, "
            "state, report) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (profile, id) DO UPDATE SET "
            "updated_at=excluded.updated_at, finished=excluded.finished, n_questions=excluded.n_questions, "
            "mean_score=excluded.mean_score, state=excluded.state, report=excluded.report",
            (profile, s.id, iso(s.created_at), iso(s.updated_at), int(s.finished), s.n_questions, s.mean_score,
             json.dumps(s.state, ensure_ascii=False), s.report))

    def save_session(self, profile: str, session: SessionRecord) -> None:
        with self._tx(write=True) as conn:
            self._upsert_session(conn, self._ensure(conn, profile), session)

    def sessions(self, profile: str) -> list[SessionRecord]:
        with self._tx(write=False) as conn:
            return self._select_sessions(conn, profile)

    @staticmethod
    def _select_sessions(conn: sqlite3.Connection, profile: str) -> list[SessionRecord]:
        rows = conn.execute("SELECT id, created_at, updated_at, finished, n_questions, mean_score, state, report "
                            "FROM interview_sessions WHERE profile = ? ORDER BY created_at, id", (profile,)).fetchall()
        return [SessionRecord(id=r[0], created_at=datetime.fromisoformat(r[1]),
                              updated_at=datetime.fromisoformat(r[2]), finished=bool(r[3]), n_questions=r[4],
                              mean_score=r[5], state=json.loads(r[6]), report=r[7]) for r in rows]

    # ---- statistics, export, import, delete ------------------------------------------------------

    def stats(self, profile: str, corpus=None, now: datetime | None = None) -> ProgressStats:
        with self._tx(write=False) as conn:  # one snapshot: attempts and cards agree
            attempts = self._select_attempts(conn, profile)
            cards = [self._card(r) for r in conn.execute(self._CARD_SQL, (profile,))]
        return compute_stats(profile, attempts, cards, corpus, now or now_utc())

    def export(self, profile: str) -> ProfileExport:
        profile = validate_profile(profile)
        with self._tx(write=False) as conn:
            attempts = self._select_attempts(conn, profile)
            cards = [self._card(r) for r in conn.execute(self._CARD_SQL + " ORDER BY entry_id", (profile,))]
            sessions = self._select_sessions(conn, profile)
        return ProfileExport(profile=profile, attempts=attempts, cards=cards, sessions=sessions)

    def import_profile(self, data: ProfileExport, profile: str | None = None) -> ImportResult:
        """Merge an export into `profile` (default: the exported name), atomically; re-importing adds nothing."""
        target = validate_profile(profile or data.profile)
        added = 0
        touched: set[str] = set()
        with self._tx(write=True) as conn:
            self._ensure(conn, target)
            for a in data.attempts:
                if self._insert_attempt(conn, target, a):
                    added += 1
                    if a.scheduled:
                        touched.add(a.entry_id)
            for entry_id in sorted(touched):
                self._rebuild_card(conn, target, entry_id)
            for s in data.sessions:
                self._upsert_session(conn, target, s)
            cards = conn.execute("SELECT count(*) FROM review_cards WHERE profile = ?", (target,)).fetchone()[0]
        return ImportResult(profile=target, attempts_added=added, attempts_skipped=len(data.attempts) - added,
                            sessions=len(data.sessions), cards=cards)

    def delete_profile(self, profile: str) -> DeleteResult:
        profile = validate_profile(profile)
        with self._tx(write=True) as conn:
            existed = conn.execute("SELECT 1 FROM profiles WHERE name = ?", (profile,)).fetchone() is not None
            sessions = [r[0] for r in conn.execute("SELECT id FROM interview_sessions WHERE profile = ?", (profile,))]
            n_attempts = conn.execute("DELETE FROM attempts WHERE profile = ?", (profile,)).rowcount
            n_cards = conn.execute("DELETE FROM review_cards WHERE profile = ?", (profile,)).rowcount
            conn.execute("DELETE FROM interview_sessions WHERE profile = ?", (profile,))
            conn.execute("DELETE FROM profiles WHERE name = ?", (profile,))
        return DeleteResult(profile=profile, existed=existed, attempts=n_attempts, cards=n_cards, sessions=sessions)

    def integrity_check(self) -> str:
        """SQLite's own `PRAGMA integrity_check` ('ok' when the file is sound)."""
        conn = self._connect()
        try:
            return "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check"))
        finally:
            conn.close()
