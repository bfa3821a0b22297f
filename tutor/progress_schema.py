"""The SQLite schema of the progress store, as numbered migrations.

    migrate(conn)             # brings any database (empty, or at an older version) to LATEST_VERSION
    migrate(conn, target=1)   # stops at a given version (tests build version-1 databases this way)

Design. `schema_version` has one row per applied step (version, name, time). Each step runs in its
own `BEGIN IMMEDIATE` transaction together with its `schema_version` row, so a crash or a kill
mid-migration leaves the database at the previous version, and two processes opening the same new
file at once cannot both apply a step (the second re-reads the version inside its write lock and
finds nothing to do). Statements are executed one by one: `executescript` would commit early.

The steps (never edit an applied step; add a new one):

1. initial schema: profiles, attempts (entry, answer, score, key-point verdicts JSON, grader, time)
   and interview sessions with their reports.
2. review cards: one FSRS card per (profile, entry), backfilled by replaying every existing attempt
   through `tutor.review.replay`, so upgraded users keep their history's schedule.
3. attempt provenance: `uid` (unique per profile, for idempotent recording and import; existing rows
   get random ones), input mode (typed/spoken; version 1 only knew typed answers), LLM-fallback flag,
   source and session id, `focus` (follow-ups graded on some key points) and the entry's topic.

A database whose version is newer than this code refuses to open with a clear message rather than
being written by code that does not know its columns.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Callable

from tutor.progress_store import Attempt, ProgressStoreError, iso, now_utc
from tutor.review import replay

Step = Callable[[sqlite3.Connection], None]

V1_INITIAL = [
    """CREATE TABLE profiles (
        name TEXT PRIMARY KEY,
        created_at TEXT NOT NULL)""",
    """CREATE TABLE attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        profile TEXT NOT NULL REFERENCES profiles(name) ON DELETE CASCADE,
        entry_id TEXT NOT NULL,
        answer TEXT NOT NULL,
        score REAL NOT NULL CHECK (score >= 0 AND score <= 10),
        key_points TEXT NOT NULL,
        grader TEXT NOT NULL,
        created_at TEXT NOT NULL)""",
    "CREATE INDEX attempts_by_entry ON attempts(profile, entry_id, created_at)",
    """CREATE TABLE interview_sessions (
        profile TEXT NOT NULL REFERENCES profiles(name) ON DELETE CASCADE,
        id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        finished INTEGER NOT NULL DEFAULT 0,
        n_questions INTEGER NOT NULL DEFAULT 0,
        mean_score REAL,
        state TEXT NOT NULL,
        report TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (profile, id))""",
]

V2_CARDS = [
    """CREATE TABLE review_cards (
        profile TEXT NOT NULL REFERENCES profiles(name) ON DELETE CASCADE,
        entry_id TEXT NOT NULL,
        due TEXT NOT NULL,
        state INTEGER NOT NULL,
        stability REAL,
        difficulty REAL,
        last_review TEXT,
        reps INTEGER NOT NULL,
        last_score REAL NOT NULL,
        last_rating INTEGER NOT NULL,
        card TEXT NOT NULL,
        PRIMARY KEY (profile, entry_id))""",
    "CREATE INDEX review_cards_by_due ON review_cards(profile, due)",
]

V3_PROVENANCE = [
    "ALTER TABLE attempts ADD COLUMN uid TEXT",
    "ALTER TABLE attempts ADD COLUMN input_mode TEXT NOT NULL DEFAULT 'typed'",
    "ALTER TABLE attempts ADD COLUMN fell_back INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE attempts ADD COLUMN source TEXT NOT NULL DEFAULT 'migrated'",
    "ALTER TABLE attempts ADD COLUMN session_id TEXT",
    "ALTER TABLE attempts ADD COLUMN focus TEXT",
    "ALTER TABLE attempts ADD COLUMN topic TEXT NOT NULL DEFAULT ''",
    "UPDATE attempts SET uid = lower(hex(randomblob(16))) WHERE uid IS NULL",
    "CREATE UNIQUE INDEX attempts_by_uid ON attempts(profile, uid)",
]


def _sql(statements: list[str]) -> Step:
    def step(conn: sqlite3.Connection) -> None:
        for statement in statements:
            conn.execute(statement)
    return step


def upsert_card(conn: sqlite3.Connection, profile: str, card) -> None:
    """Write one review card (shared by migration 2 and the store)."""
    conn.execute(
        "INSERT INTO review_cards (profile, entry_id, due, state, stability, difficulty, last_review, reps, "
        "last_score, last_rating, card) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (profile, entry_id) DO UPDATE SET due=excluded.due, state=excluded.state, "
        "stability=excluded.stability, difficulty=excluded.difficulty, last_review=excluded.last_review, "
        "reps=excluded.reps, last_score=excluded.last_score, last_rating=excluded.last_rating, card=excluded.card",
        (profile, card.entry_id, iso(card.due), card.state, card.stability, card.difficulty,
         iso(card.last_review) if card.last_review else None, card.reps, card.last_score, card.last_rating,
         json.dumps(card.card)))


def _v2_cards(conn: sqlite3.Connection) -> None:
    _sql(V2_CARDS)(conn)
    rows = conn.execute("SELECT id, profile, entry_id, score, created_at FROM attempts "
                        "ORDER BY profile, entry_id, created_at, id").fetchall()
    history: dict[tuple[str, str], list[Attempt]] = {}
    for row_id, profile, entry_id, score, created_at in rows:
        history.setdefault((profile, entry_id), []).append(Attempt(
            id=row_id, entry_id=entry_id, score=score, created_at=datetime.fromisoformat(created_at)))
    for (profile, entry_id), attempts in history.items():
        card = replay(entry_id, attempts)
        if card is not None:
            upsert_card(conn, profile, card)


MIGRATIONS: list[tuple[int, str, Step]] = [
    (1, "initial schema: profiles, attempts, interview sessions", _sql(V1_INITIAL)),
    (2, "FSRS review cards, backfilled from the attempts", _v2_cards),
    (3, "attempt provenance: uid, input mode, fallback, source, focus, topic", _sql(V3_PROVENANCE)),
]
LATEST_VERSION = MIGRATIONS[-1][0]


def current_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, target: int | None = None) -> int:
    """Apply pending steps up to `target` (default: all). `conn` must be in autocommit mode
    (`isolation_level=None`). Returns the version reached."""
    target = LATEST_VERSION if target is None else target
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                 "applied_at TEXT NOT NULL)")
    version = current_version(conn)
    if version > LATEST_VERSION:
        raise ProgressStoreError(f"进度数据库的结构版本是 {version}，高于本程序支持的 {LATEST_VERSION}："
                                 "请升级本程序后再打开（数据库未被修改）。")
    for number, name, step in MIGRATIONS:
        if number > target:
            break
        conn.execute("BEGIN IMMEDIATE")
        try:
            if current_version(conn) >= number:  # applied meanwhile (another process), or earlier
                conn.execute("COMMIT")
                continue
            step(conn)
            conn.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                         (number, name, iso(now_utc())))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return current_version(conn)
