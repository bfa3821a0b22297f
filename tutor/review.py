"""Spaced repetition: from graded attempts to FSRS review cards, and the interviewer's question order.

    rating_for(6.5)                          # Rating.Good
    card = review(None, "rope", 6.5, at)     # a new card after a first attempt
    card = replay("rope", attempts)          # the same card, rebuilt from the attempt history
    interview_order(pool_ids, cards, now)    # due first, then weak, then unseen, then the rest

Design. FSRS (the `fsrs` package) schedules each (profile, entry) like a flash card; the rating of
an attempt comes from its score, which is ours (`tutor.grade_model.score_from_verdicts`):

    score < 4    -> Again (重来)  most key points missed: see it again tomorrow
    score < 6    -> Hard  (困难)  about half the points
    score < 8.5  -> Good  (良好)  most points, something missing
    otherwise    -> Easy  (简单)  complete

The cut-offs follow the grade's meaning: 6 is "more than half covered" and 8.5 is the point above
which the offline grader only loses marks to wording, so Easy means "nothing to add".

Scheduler settings and why:
- No minute-scale learning steps (`learning_steps=()`, `relearning_steps=()`): an interview question
  is studied over days, not in a flash-card sitting; with the defaults every answered question would
  be due again ten minutes later. A first attempt therefore lands straight in FSRS's review state:
  Again -> 1 day, Hard -> 1 day, Good -> 2 days, Easy -> 8 days, growing from there.
- No fuzzing: the card is then a pure function of the attempt history, so `replay` (used by
  imports, migrations and out-of-order inserts) gives exactly the card that incremental updates
  built, and an exported profile imports to identical schedules. The cost is that entries first
  answered on the same day stay due on the same day; with tens of entries that does no harm.
- `desired_retention` 0.9 and the default FSRS-6 parameters: there is no per-user review history
  to fit them to yet (`fsrs.Optimizer` could, later, from the stored attempts).

"Weak" means the latest whole-question score is below `WEAK_SCORE` (6, i.e. rated Again or Hard).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import lru_cache
from typing import Iterable, Sequence

from fsrs import Card, Rating, Scheduler, State

from tutor.progress_store import Attempt, ReviewCard, utc

RATING_CUTOFFS: tuple[tuple[float, Rating], ...] = ((4.0, Rating.Again), (6.0, Rating.Hard), (8.5, Rating.Good))
RATING_LABEL = {Rating.Again: "重来", Rating.Hard: "困难", Rating.Good: "良好", Rating.Easy: "简单"}
STATE_LABEL = {State.Learning: "学习中", State.Review: "复习中", State.Relearning: "重新学习"}
WEAK_SCORE = 6.0
DESIRED_RETENTION = 0.9


def rating_for(score: float) -> Rating:
    """The FSRS rating of a 0-10 score (see the module docstring for the cut-offs)."""
    for cutoff, rating in RATING_CUTOFFS:
        if score < cutoff:
            return rating
    return Rating.Easy


@lru_cache(maxsize=1)
def scheduler() -> Scheduler:
    return Scheduler(desired_retention=DESIRED_RETENTION, learning_steps=(), relearning_steps=(),
                     enable_fuzzing=False)


def _card_id(entry_id: str) -> int:
    # fsrs defaults card_id to the creation time in ms (and sleeps 1 ms); a hash keeps replays identical.
    return int(hashlib.sha1(entry_id.encode()).hexdigest()[:12], 16)


def review(card: ReviewCard | None, entry_id: str, score: float, at: datetime) -> ReviewCard:
    """`card` (None for a first attempt) after an attempt scored `score` at time `at`."""
    at = utc(at)
    fcard = Card.from_dict(card.card) if card else Card(card_id=_card_id(entry_id), due=at)
    rating = rating_for(score)
    fcard, _log = scheduler().review_card(fcard, rating, review_datetime=at)
    return ReviewCard(entry_id=entry_id, due=fcard.due, state=fcard.state.value, stability=fcard.stability,
                      difficulty=fcard.difficulty, last_review=fcard.last_review,
                      reps=(card.reps if card else 0) + 1, last_score=score, last_rating=rating.value,
                      card=fcard.to_dict())


def replay(entry_id: str, attempts: Iterable[Attempt]) -> ReviewCard | None:
    """The card built from an entry's scheduled attempts in time order (None when there are none)."""
    card = None
    ordered = sorted((a for a in attempts if a.scheduled and a.entry_id == entry_id),
                     key=lambda a: (a.created_at, a.id or 0))
    for a in ordered:
        card = review(card, entry_id, a.score, a.created_at)
    return card


def retrievability(card: ReviewCard, now: datetime) -> float:
    """FSRS's estimate (0-1) that the candidate still remembers the entry at `now`."""
    return scheduler().get_card_retrievability(Card.from_dict(card.card), utc(now))


def is_due(card: ReviewCard, now: datetime) -> bool:
    return card.due <= utc(now)


def interview_order(pool_ids: Sequence[str], cards: Iterable[ReviewCard], now: datetime) -> list[str]:
    """The pool re-ordered for a mock interview: due entries (least remembered first), then weak ones
    (lowest latest score first), then entries never answered, then the rest; ties keep pool order."""
    now = utc(now)
    in_pool = set(pool_ids)
    by_id = {c.entry_id: c for c in cards if c.entry_id in in_pool}
    position = {entry_id: n for n, entry_id in enumerate(pool_ids)}
    due = sorted((c for c in by_id.values() if is_due(c, now)),
                 key=lambda c: (retrievability(c, now), c.due, position[c.entry_id]))
    due_ids = {c.entry_id for c in due}
    weak = sorted((c for c in by_id.values() if c.entry_id not in due_ids and c.last_score < WEAK_SCORE),
                  key=lambda c: (c.last_score, position[c.entry_id]))
    first = [c.entry_id for c in due] + [c.entry_id for c in weak]
    unseen = [i for i in pool_ids if i not in by_id]
    placed = set(first) | set(unseen)
    rest = [i for i in pool_ids if i not in placed]
    return list(dict.fromkeys(first + unseen + rest))
