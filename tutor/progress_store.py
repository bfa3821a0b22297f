"""The progress store's interface: the records it keeps and the `ProgressStore` protocol.

    store.add_attempt("alice", Attempt(entry_id="rope", score=6.5, key_points=[...], created_at=now))
    store.due("alice", now)          # review cards with due <= now (今日待复习)
    store.stats("alice", corpus)     # -> tutor.progress_stats.ProgressStats
    data = store.export("alice"); other.import_profile(data)

Design. Everything above the store (CLIs, the interview, the UI) talks to this protocol, never to
SQL, so a server database can replace the SQLite file (`tutor/progress_sqlite.py`, the only
implementation) where several app instances share users. The records are pydantic models: they
validate what callers hand in, and they are also the JSON export format, so an export is exactly
what the store holds.

- An `Attempt` is one graded answer: entry id, answer text, score, the key-point verdicts (the
  `Grade.key_points` dicts), the grader (offline/llm, `fell_back`), the input mode (typed/spoken),
  where it came from (`source`, `session_id`) and when. `uid` makes recording idempotent: the store
  ignores an attempt whose uid the profile already has, so re-recording a resumed interview or
  importing the same export twice adds nothing.
- An attempt with `focus` set was graded on a subset of the entry's key points (an interview
  follow-up aimed at one missed point). It is kept, and its verdicts count in the missed-key-point
  statistics, but it does not move the entry's review schedule or its "latest score": a score on
  one key point is not a score on the question.
- A `ReviewCard` is the FSRS state of one (profile, entry); it is derived from the attempts (see
  `tutor/review.py`), stored for fast `due` queries.

Trade-off: times are timezone-aware datetimes, stored in UTC; a naive datetime is taken as UTC.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field, field_validator

if TYPE_CHECKING:  # annotations only (tutor.corpus is below us; importing it costs ~0.1 s)
    from tutor.corpus import Corpus

EXPORT_FORMAT = "llm-interview-tutor.progress"
EXPORT_VERSION = 1
DEFAULT_PROFILE = "default"
PROFILE_MAX_CHARS = 64
_BAD_PROFILE_CHARS = re.compile(r"[\x00-\x1f\x7f/\\]")


class ProgressStoreError(Exception):
    """The store could not do what was asked (locked too long, corrupt, newer schema, bad import)."""


def utc(dt: datetime) -> datetime:
    """`dt` in UTC; a naive datetime is taken to be UTC already."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime) -> str:
    """The one text form of a time in the database: UTC, microseconds, so text order is time order."""
    return utc(dt).isoformat(timespec="microseconds")


def validate_profile(name: str | None) -> str:
    """A profile name, stripped; raises ValueError (Chinese message) for an unusable one."""
    name = (name or "").strip()
    if not name:
        raise ValueError("用户档案名（profile）不能为空")
    if len(name) > PROFILE_MAX_CHARS:
        raise ValueError(f"用户档案名过长（{len(name)} 个字符，最多 {PROFILE_MAX_CHARS} 个）")
    if _BAD_PROFILE_CHARS.search(name):
        raise ValueError(f"用户档案名 `{name!r}` 含有控制字符或斜杠，请换一个名字")
    return name


class Attempt(BaseModel):
    """One graded answer to one entry."""

    entry_id: str = Field(min_length=1)
    answer: str = ""
    score: float = Field(ge=0, le=10)
    key_points: list[dict[str, Any]] = []  # Grade.key_points dumped: index, key_point, verdict, evidence...
    grader: Literal["offline", "llm"] = "offline"
    fell_back: bool = False
    input_mode: Literal["typed", "spoken"] = "typed"
    source: str = "grade"  # grade | interview | ui | import | migrated
    session_id: str | None = None
    focus: list[int] | None = None  # graded on these key points only: kept, but not scheduled
    topic: str = ""  # "section / topic" when recorded, for entries that later leave the corpus
    created_at: datetime = Field(default_factory=now_utc)
    uid: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=200)
    id: int | None = Field(None, exclude=True)  # the store's row id; not part of an export

    @field_validator("created_at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return utc(v)

    @property
    def scheduled(self) -> bool:
        """Whether this attempt moves the entry's review card (a whole-question grade)."""
        return self.focus is None


class ReviewCard(BaseModel):
    """The FSRS review state of one entry for one profile."""

    entry_id: str
    due: datetime
    state: int  # fsrs.State: 1 learning, 2 review, 3 relearning
    stability: float | None = None
    difficulty: float | None = None
    last_review: datetime | None = None
    reps: int = 0  # scheduled attempts folded into this card
    last_score: float = 0.0
    last_rating: int = 0  # fsrs.Rating of the latest scheduled attempt
    card: dict[str, Any]  # fsrs.Card.to_dict(), the scheduler's own state

    @field_validator("due", "last_review")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        return utc(v) if v is not None else None


class SessionRecord(BaseModel):
    """A mock interview session and, once finished, its report."""

    id: str
    created_at: datetime
    updated_at: datetime
    finished: bool = False
    n_questions: int = 0
    mean_score: float | None = None
    state: dict[str, Any] = {}  # tutor.interview.InterviewState dumped
    report: str = ""

    @field_validator("created_at", "updated_at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return utc(v)


class ProfileSummary(BaseModel):
    name: str
    created_at: datetime
    attempts: int = 0
    entries: int = 0
    sessions: int = 0


class ProfileExport(BaseModel):
    """`tutor progress export` writes this as JSON; `import` reads it back."""

    format: Literal["llm-interview-tutor.progress"] = EXPORT_FORMAT
    version: int = EXPORT_VERSION
    profile: str
    exported_at: datetime = Field(default_factory=now_utc)
    attempts: list[Attempt] = []
    cards: list[ReviewCard] = []  # informational: import rebuilds cards from the attempts
    sessions: list[SessionRecord] = []


class ImportResult(BaseModel):
    profile: str
    attempts_added: int
    attempts_skipped: int  # already present (same uid)
    sessions: int
    cards: int


class DeleteResult(BaseModel):
    profile: str
    existed: bool
    attempts: int = 0
    cards: int = 0
    sessions: list[str] = []  # ids of the deleted interview sessions
    files: int = 0  # saved interview files removed (tutor.progress.delete_profile)


@runtime_checkable
class ProgressStore(Protocol):
    """What the app needs from a progress database. Every method takes an explicit profile."""

    def describe(self) -> str: ...

    def ensure_profile(self, profile: str) -> None: ...

    def profiles(self) -> list[ProfileSummary]: ...

    def add_attempt(self, profile: str, attempt: Attempt) -> bool:
        """Record one attempt and update the entry's card; False when its uid is already recorded."""

    def attempts(self, profile: str, entry_id: str | None = None) -> list[Attempt]:
        """Attempts in time order (oldest first)."""

    def cards(self, profile: str) -> list[ReviewCard]: ...

    def due(self, profile: str, now: datetime | None = None, limit: int | None = None) -> list[ReviewCard]:
        """Cards with due <= now, most overdue first."""

    def save_session(self, profile: str, session: SessionRecord) -> None: ...

    def sessions(self, profile: str) -> list[SessionRecord]: ...

    def stats(self, profile: str, corpus: "Corpus | None" = None, now: datetime | None = None) -> Any:
        """`tutor.progress_stats.ProgressStats` (computed by `compute_stats`, which sits above this module)."""

    def export(self, profile: str) -> ProfileExport: ...

    def import_profile(self, data: ProfileExport, profile: str | None = None) -> ImportResult: ...

    def delete_profile(self, profile: str) -> DeleteResult: ...
