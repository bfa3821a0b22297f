"""Progress statistics of one profile: mastery per topic, score over time, most-missed key points.

    stats = compute_stats("alice", attempts, cards, corpus, now)   # or store.stats("alice", corpus)
    print(render_stats(stats))                                      # markdown for the CLI / UI
    print(render_due("alice", store.due("alice", now), corpus, now))  # 今日待复习

Design. Pure functions of the stored attempts and review cards (plus the corpus, for topics and how
many entries each topic has), so every store implementation gets the same numbers, and an
exported-then-imported profile gives identical statistics by construction. `ProgressStats` is a
pydantic model: the UI renders it, `--json` prints it, the plots (`tutor/progress_plots.py`) draw it.

Definitions (the ones a candidate can check by hand):
- an entry's *latest score* is its most recent whole-question attempt (follow-ups graded on a single
  key point do not count: see `Attempt.scheduled`);
- a topic's *mastery* is the mean latest score over the topic's answered entries, its *coverage* the
  share of its corpus entries answered at least once; *mastered* entries have a latest score >= 8.5
  (the Easy rating);
- *score over time* is the mean whole-question score per local calendar day;
- a key point's misses count every attempt that graded it (follow-ups included) as missed or partial;
  points whose latest verdict is still not "covered" rank first, then by how often they were missed.

Trade-offs: mastery ignores the entry's level and how long ago it was answered (the review schedule
handles forgetting); topics come from the current corpus, falling back to the topic recorded with
the attempt for entries that have since left it.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, tzinfo

from pydantic import BaseModel

from fsrs import Rating

from tutor.progress_store import Attempt, ReviewCard, utc
from tutor.review import RATING_LABEL, WEAK_SCORE, is_due

MASTERED_SCORE = 8.5
GONE_TOPIC = "（已不在知识库中）"
TOP_MISSED = 10


class TopicMastery(BaseModel):
    topic: str  # "section / topic"
    section: str
    entries: int | None = None  # gradable entries the corpus has in this topic (None without a corpus)
    attempted: int = 0
    mastery: float | None = None  # mean latest score of the attempted entries
    coverage: float | None = None  # attempted / entries
    mastered: int = 0
    due: int = 0


class DayScore(BaseModel):
    day: str  # YYYY-MM-DD, local time
    attempts: int
    mean_score: float


class MissedPoint(BaseModel):
    entry_id: str
    key_point: str
    asked: int
    missed: int
    partial: int
    last_verdict: str


class EntryProgress(BaseModel):
    entry_id: str
    question: str
    topic: str
    attempts: int
    latest_score: float | None
    best_score: float | None
    last_at: datetime
    due: datetime | None = None
    is_due: bool = False


class ProgressStats(BaseModel):
    profile: str
    attempts: int = 0
    answered_entries: int = 0
    mean_latest: float | None = None
    mastered: int = 0
    weak: int = 0
    due: int = 0
    topics: list[TopicMastery] = []
    by_day: list[DayScore] = []
    missed_points: list[MissedPoint] = []
    entries: list[EntryProgress] = []


def _topic_of(corpus, entry_id: str, recorded: str) -> tuple[str, str]:
    entry = corpus.get(entry_id) if corpus is not None else None
    if entry is not None:
        return f"{entry.section} / {entry.topic}", entry.section
    topic = recorded or GONE_TOPIC
    return topic, topic.split(" / ")[0]


def compute_stats(profile: str, attempts: list[Attempt], cards: list[ReviewCard], corpus=None,
                  now: datetime | None = None, tz: tzinfo | None = None) -> ProgressStats:
    """Statistics of one profile at time `now` (days are bucketed in `tz`, default the local zone)."""
    now = utc(now or datetime.now().astimezone())
    attempts = sorted(attempts, key=lambda a: (a.created_at, a.id or 0, a.uid))
    cards_by_id = {c.entry_id: c for c in cards}
    whole = [a for a in attempts if a.scheduled]

    per_entry: dict[str, list[Attempt]] = defaultdict(list)
    recorded_topic: dict[str, str] = {}
    for a in attempts:
        per_entry[a.entry_id].append(a)
        if a.topic:
            recorded_topic[a.entry_id] = a.topic
    entries: list[EntryProgress] = []
    for entry_id, items in per_entry.items():
        scored = [a.score for a in items if a.scheduled]
        topic, _ = _topic_of(corpus, entry_id, recorded_topic.get(entry_id, ""))
        card = cards_by_id.get(entry_id)
        entry = corpus.get(entry_id) if corpus is not None else None
        entries.append(EntryProgress(
            entry_id=entry_id, question=entry.question if entry else entry_id, topic=topic, attempts=len(items),
            latest_score=scored[-1] if scored else None, best_score=max(scored) if scored else None,
            last_at=items[-1].created_at, due=card.due if card else None,
            is_due=bool(card and is_due(card, now))))
    entries.sort(key=lambda e: (e.latest_score if e.latest_score is not None else 11, e.entry_id))
    latest = {e.entry_id: e.latest_score for e in entries if e.latest_score is not None}

    # Topics: every corpus topic (so coverage shows the gaps), plus topics only the attempts know.
    topics: dict[str, TopicMastery] = {}
    if corpus is not None:
        for entry in corpus.entries:
            if not entry.key_points:
                continue
            key = f"{entry.section} / {entry.topic}"
            t = topics.setdefault(key, TopicMastery(topic=key, section=entry.section, entries=0))
            t.entries += 1
    topic_scores: dict[str, list[float]] = defaultdict(list)
    for e in entries:
        key, section = _topic_of(corpus, e.entry_id, recorded_topic.get(e.entry_id, ""))
        t = topics.setdefault(key, TopicMastery(topic=key, section=section, entries=None if corpus is None else 0))
        if e.latest_score is None:
            continue
        topic_scores[key].append(e.latest_score)
        t.attempted += 1
        t.mastered += e.latest_score >= MASTERED_SCORE
        t.due += e.is_due
    for key, t in topics.items():
        if topic_scores.get(key):
            t.mastery = round(statistics.fmean(topic_scores[key]), 2)
        if t.entries:
            t.coverage = round(t.attempted / t.entries, 3)

    by_day: dict[str, list[float]] = defaultdict(list)
    for a in whole:
        by_day[a.created_at.astimezone(tz).date().isoformat()].append(a.score)
    days = [DayScore(day=d, attempts=len(s), mean_score=round(statistics.fmean(s), 2)) for d, s in sorted(by_day.items())]

    return ProgressStats(
        profile=profile, attempts=len(attempts), answered_entries=len(latest),
        mean_latest=round(statistics.fmean(latest.values()), 2) if latest else None,
        mastered=sum(1 for s in latest.values() if s >= MASTERED_SCORE),
        weak=sum(1 for s in latest.values() if s < WEAK_SCORE),
        due=sum(1 for c in cards if is_due(c, now)),
        topics=sorted(topics.values(), key=lambda t: t.topic), by_day=days,
        missed_points=missed_points(attempts), entries=entries)


def missed_points(attempts: list[Attempt], top: int = TOP_MISSED) -> list[MissedPoint]:
    """Key points most often missed or half-answered, still-missed ones first."""
    seen: dict[tuple[str, str], MissedPoint] = {}
    for a in attempts:  # time order: the last verdict wins
        for kp in a.key_points:
            text, verdict = str(kp.get("key_point", "")), str(kp.get("verdict", ""))
            if not text or verdict not in ("covered", "partial", "missed"):
                continue
            p = seen.setdefault((a.entry_id, text), MissedPoint(entry_id=a.entry_id, key_point=text, asked=0,
                                                                 missed=0, partial=0, last_verdict=verdict))
            p.asked += 1
            p.missed += verdict == "missed"
            p.partial += verdict == "partial"
            p.last_verdict = verdict
    ranked = sorted((p for p in seen.values() if p.missed or p.partial),
                    key=lambda p: (p.last_verdict == "covered", -(p.missed + 0.5 * p.partial), -p.asked,
                                   p.entry_id, p.key_point))
    return ranked[:top]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_stats(stats: ProgressStats, top: int = TOP_MISSED) -> str:
    """The statistics as markdown (Chinese), for `tutor progress show` and the UI's 进度 tab."""
    if not stats.attempts:
        return f"# 学习进度：{stats.profile}\n\n还没有作答记录。用 `tutor grade` 或 `tutor interview` 作答后，这里会显示进度。\n"
    mean = f"{stats.mean_latest:.1f}" if stats.mean_latest is not None else "—"
    lines = [f"# 学习进度：{stats.profile}", "",
             f"- 作答 {stats.attempts} 次，涉及 {stats.answered_entries} 道题；最近得分平均 **{mean} / 10**",
             f"- 已掌握（≥ {MASTERED_SCORE:g} 分）{stats.mastered} 道，薄弱（< {WEAK_SCORE:g} 分）{stats.weak} 道，"
             f"今日待复习 **{stats.due}** 道", ""]
    answered = [t for t in stats.topics if t.attempted]
    lines += ["## 各主题掌握度", "", "| 主题 | 掌握度 | 覆盖 | 已掌握 | 待复习 |", "| --- | --- | --- | --- | --- |"]
    for t in sorted(answered, key=lambda t: (t.mastery or 0, t.topic)):
        cover = f"{t.attempted}/{t.entries}" if t.entries else f"{t.attempted}"
        lines.append(f"| {_cell(t.topic)} | {t.mastery:.1f} | {cover} | {t.mastered} | {t.due} |")
    untouched = [t.topic for t in stats.topics if not t.attempted and t.entries]
    if untouched:
        lines += ["", f"还没练过的主题（{len(untouched)} 个）：" + "、".join(untouched[:12]) + ("……" if len(untouched) > 12 else "")]
    if stats.by_day:
        lines += ["", "## 得分变化（按天）", "", "| 日期 | 作答 | 平均分 |", "| --- | --- | --- |"]
        lines += [f"| {d.day} | {d.attempts} | {d.mean_score:.1f} |" for d in stats.by_day[-14:]]
    if stats.missed_points:
        lines += ["", "## 最常漏掉的要点", ""]
        for p in stats.missed_points[:top]:
            still = "（最近一次仍未答到）" if p.last_verdict != "covered" else "（最近一次已答到）"
            lines.append(f"- `{p.entry_id}`：{p.key_point} — 漏 {p.missed} 次、部分 {p.partial} 次 / 共 {p.asked} 次{still}")
    return "\n".join(lines) + "\n"


def render_due(profile: str, cards: list[ReviewCard], corpus=None, now: datetime | None = None) -> str:
    """The "今日待复习" list as markdown: question, entry id, last score and rating, how overdue."""
    now = utc(now or datetime.now().astimezone())
    if not cards:
        return f"今日待复习（{profile}）：没有到期的题目。"
    lines = [f"今日待复习（{profile}）：{len(cards)} 道", ""]
    for n, c in enumerate(cards, 1):
        entry = corpus.get(c.entry_id) if corpus is not None else None
        question = entry.question if entry else (GONE_TOPIC if corpus is not None else c.entry_id)
        overdue = (now - c.due).days
        when = f"已过期 {overdue} 天" if overdue >= 1 else "今天到期"
        lines.append(f"{n}. {question}\n   `{c.entry_id}` · 上次 {c.last_score:g} 分（{RATING_LABEL[Rating(c.last_rating)]}）"
                     f" · 已复习 {c.reps} 次 · {when}")
    return "\n".join(lines)
