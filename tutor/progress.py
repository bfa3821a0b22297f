"""Progress tracking, wired into the app: open the store, pick the profile, record grades and sessions.

    store = open_store(settings)                         # TUTOR_DATABASE_URL, default <data_dir>/progress.sqlite3
    profile = current_profile(settings, args.profile)    # --profile > TUTOR_PROFILE > "default"
    profile = profile_for_request(request.username)      # the UI: the login name is the profile
    record_grade(store, profile, grade, corpus)          # after `tutor grade` (or a UI answer)
    record_interview(store, profile, session)            # after every interview answer (idempotent)
    Interview.start_new(corpus, grader, config, priority=interview_priority(store, profile))
    markdown, figures = progress_page(store, profile, corpus)   # the UI's 进度 tab in one call

Design. Graders and the interview session know nothing about storage; recording happens here, at
the level of whoever ran them (CLI or UI), so a grading test never writes a database and a failing
database never fails a grade. An interview turn's attempt uid is `interview:<session>:<q>:<turn>`,
so recording the whole session after each answer adds only the new turns, and a resumed session
does not record its earlier answers twice.

The database URL (`settings.database_url`, env `TUTOR_DATABASE_URL`) is `sqlite:///relative/path`,
`sqlite:////absolute/path` (SQLAlchemy's spelling) or a bare file path; anything else (postgresql://,
mysql://...) is refused with a message saying what is supported, rather than silently falling back
to a local file that other app instances would not see. A server store would be one more branch in
`open_store` returning another `ProgressStore`.

Profiles: several people can share one app. With authentication configured (TUTOR_AUTH) the UI calls
`profile_for_request(username)`, so each login has its own attempts and schedule; without it every
request uses the configured profile.
"""

from __future__ import annotations

import re
import statistics
from datetime import datetime
from pathlib import Path
from typing import Callable

from tutor.progress_sqlite import SqliteProgressStore
from tutor.progress_store import (DEFAULT_PROFILE, Attempt, DeleteResult, ProgressStore, ProgressStoreError,
                                  SessionRecord, now_utc, validate_profile)
from tutor.review import interview_order
from tutor.settings import Settings, get_settings

__all__ = ["open_store", "open_for_recording", "parse_database_url", "current_profile", "profile_for_request", "record_grade",
           "record_interview", "interview_priority", "delete_profile", "progress_page", "ProgressStore", "ProgressStoreError",
           "DATABASE_FILE"]

DATABASE_FILE = "progress.sqlite3"
SUPPORTED_URLS = "sqlite:///相对路径、sqlite:////绝对路径，或直接写数据库文件路径"
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
SESSION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,100}$")


def parse_database_url(url: str | None, data_dir: Path) -> Path:
    """The SQLite file a database URL names (default: `<data_dir>/progress.sqlite3`).

    Raises ValueError naming the supported forms for any other scheme."""
    url = (url or "").strip()
    if not url:
        return Path(data_dir) / DATABASE_FILE
    m = _SCHEME_RE.match(url)
    if m is None:  # a bare path (C:\\... has no "://", so Windows paths land here too)
        return Path(url).expanduser()
    scheme = m.group(1).lower()
    if scheme not in ("sqlite", "sqlite3"):
        raise ValueError(f"不支持的数据库地址 `{url.split('://')[0]}://…`（TUTOR_DATABASE_URL）：目前只支持 SQLite，"
                         f"写法为 {SUPPORTED_URLS}。")
    rest = url[m.end():]
    if not rest.startswith("/") or rest == "/":
        raise ValueError(f"数据库地址 `{url}` 缺少文件路径：写法为 {SUPPORTED_URLS}。")
    path = rest[1:]  # sqlite:///x.db -> x.db (relative), sqlite:////abs/x.db -> /abs/x.db
    if path in (":memory:", ""):
        raise ValueError("进度数据库需要一个文件（:memory: 不会保存任何进度）。")
    return Path(path).expanduser()


def open_store(settings: Settings | None = None) -> ProgressStore:
    """The configured progress store. ValueError: bad URL; ProgressStoreError: cannot open."""
    settings = settings or get_settings()
    return SqliteProgressStore(parse_database_url(settings.database_url, settings.data_dir))


def current_profile(settings: Settings | None = None, override: str | None = None) -> str:
    """The profile to use: an explicit --profile, else TUTOR_PROFILE, else "default"."""
    if override is not None and override.strip():
        return validate_profile(override)
    settings = settings or get_settings()
    return validate_profile(getattr(settings, "profile", None) or DEFAULT_PROFILE)


def profile_for_request(username: str | None, settings: Settings | None = None) -> str:
    """The profile of a UI request: the login name when the app runs with authentication, else the
    configured profile. Pass `request.username` (None when auth is off)."""
    if username is not None and str(username).strip():
        return validate_profile(str(username))
    return current_profile(settings)


def open_for_recording(settings: Settings | None = None,
                       profile: str | None = None) -> tuple[ProgressStore | None, str | None, str | None]:
    """(store, profile, None) for a CLI that records answers, or (None, None, warning) when the store
    cannot be used: a broken progress database must never stop a grade or an interview."""
    try:
        profile = current_profile(settings, profile)
        return open_store(settings), profile, None
    except (ValueError, ProgressStoreError) as exc:
        return None, None, f"本次作答不会记录到学习进度：{exc}"


def _topic(corpus, entry_id: str) -> str:
    entry = corpus.get(entry_id) if corpus is not None else None
    return f"{entry.section} / {entry.topic}" if entry else ""


def record_grade(store: ProgressStore, profile: str, grade, corpus=None, *, input_mode: str = "typed",
                 source: str = "grade", session_id: str | None = None, uid: str | None = None,
                 focus: list[int] | None = None, answer: str | None = None, at: datetime | None = None) -> bool:
    """Record a `tutor.grade_model.Grade` as an attempt; False when that uid was already recorded."""
    fields = dict(entry_id=grade.entry_id, answer=grade.answer if answer is None else answer, score=grade.score,
                  key_points=[k.model_dump(mode="json") for k in grade.key_points], grader=grade.grader,
                  fell_back=grade.fell_back, input_mode=input_mode, source=source, session_id=session_id,
                  focus=focus, topic=_topic(corpus, grade.entry_id), created_at=at or now_utc())
    if uid:
        fields["uid"] = uid
    return store.add_attempt(profile, Attempt(**fields))


def record_interview(store: ProgressStore, profile: str, session, *, input_mode: str = "typed",
                     at: datetime | None = None) -> int:
    """Record every graded turn of a `tutor.interview.Interview` not recorded yet, and the session
    itself (with its report once finished). Returns the number of attempts added."""
    state = session.state
    added = 0
    for qi, q in enumerate(state.questions):
        for ti, turn in enumerate(q.turns):
            if turn.grade is None:
                continue
            added += record_grade(store, profile, turn.grade, session.corpus, input_mode=input_mode,
                                  source="interview", session_id=state.id, uid=f"interview:{state.id}:{qi}:{ti}",
                                  focus=turn.focus, answer=turn.answer or turn.grade.answer, at=at)
    mains = [q.turns[0].grade.score if q.turns and q.turns[0].grade else 0.0 for q in state.questions]
    store.save_session(profile, SessionRecord(
        id=state.id, created_at=datetime.fromisoformat(state.created_at),
        updated_at=datetime.fromisoformat(state.updated_at), finished=state.finished,
        n_questions=len(state.questions), mean_score=round(statistics.fmean(mains), 2) if mains else None,
        state=state.model_dump(mode="json"), report=session.report() if state.finished else ""))
    return added


def interview_priority(store: ProgressStore, profile: str,
                       now: datetime | None = None) -> Callable[[list], list[str]]:
    """The `priority` hook of `tutor.interview.select_entries`: due entries first, then weak ones,
    then entries never answered, then the rest (see `tutor.review.interview_order`)."""
    def priority(pool) -> list[str]:
        try:
            cards = store.cards(profile)
        except ProgressStoreError:
            return []  # the store is unavailable: the session's own seeded order, not a failed interview
        return interview_order([e.id for e in pool], cards, now or now_utc())
    return priority


def delete_profile(store: ProgressStore, profile: str, data_dir: Path) -> DeleteResult:
    """Delete a profile's progress and its saved interview files (`<data_dir>/interviews/<id>.json|.md`,
    which hold the same answers). The result's `files` counts the files removed."""
    result = store.delete_profile(profile)
    files = 0
    for session_id in result.sessions:
        if not SESSION_ID_RE.match(session_id):  # ids come from the database or an import: never a path
            continue
        for suffix in (".json", ".md"):
            path = Path(data_dir) / "interviews" / f"{session_id}{suffix}"
            if path.is_file():
                path.unlink()
                files += 1
    result.files = files
    return result


def progress_page(store: ProgressStore, profile: str, corpus=None, now: datetime | None = None,
                  plots: bool = True) -> tuple[str, dict]:
    """Everything the UI's 进度 tab shows for `profile`: markdown (statistics, then 今日待复习) and the
    matplotlib figures of `tutor.progress_plots.progress_figures` ({} with `plots=False`)."""
    from tutor.progress_stats import render_due, render_stats

    now = now or now_utc()
    stats = store.stats(profile, corpus, now)
    markdown = render_stats(stats) + "\n## 今日待复习\n\n" + render_due(profile, store.due(profile, now), corpus, now)
    if not plots or not stats.attempts:
        return markdown, {}
    from tutor.progress_plots import progress_figures  # matplotlib only when plots are wanted

    return markdown, progress_figures(stats)
