"""The yearly tax credit rating (docs/model.md, "Tax credit rating"): at step 8 of a tax
year's last day every company is rated, in each world, from its records of the year."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xinyong.scenario import Scenario
from xinyong.scheme.company_schema import GRADES, UNRATED

YEAR = 365
GRADE_CODES = {g: i for i, g in enumerate(GRADES)}  # A 0, B 1, M 2, C 3, D 4
A, B, M, C, D = (GRADE_CODES[g] for g in GRADES)
NOT_RATED = len(GRADES)  # code of `unrated`
GRADE_NAMES = [*GRADES, UNRATED]
# Why a rating came out as it did (bits of `Rated.why`), for the ratings table and explain.
WHY_DIRECT_RECORD, WHY_LISTED, WHY_CARRIED, WHY_RELATED, WHY_NO_A, WHY_NO_INCOME = (
    1 << i for i in range(6)
)
WHY_NAMES = ("direct_record", "abnormal_listed", "carried_over", "related_d", "no_a", "no_income")


def is_rating_day(t: int) -> bool:
    return t % YEAR == YEAR - 1


@dataclass
class RatingTables:
    """The rating pack, compiled against the company behaviours."""

    rules: list[str]  # the rated behaviours, in the pack's order; index r
    rule_of: np.ndarray  # int64 [B] the rule of each behaviour, -1 none
    deduction: np.ndarray  # int64 [R]
    cap: np.ndarray  # int64 [R], huge when no cap
    direct_d: np.ndarray  # bool [R]
    no_a: np.ndarray  # bool [R]
    start_full: int
    start_partial: int
    thresholds: tuple[int, int, int]  # A, B, C
    direct_d_lists: int  # bit mask of company lists whose members are rated D directly


def compile_rating(sc: Scenario, behaviours: list[str], lists: list[str]) -> RatingTables | None:
    co = sc.companies
    assert co is not None
    packs = [sc.company_packs[p] for p in co.packs]
    rating = next((p.rating for p in packs if p.rating is not None), None)
    if rating is None:
        return None
    rules = list(rating.rules)
    rule_of = np.full(len(behaviours), -1, dtype=np.int64)
    for r, b in enumerate(rules):
        rule_of[behaviours.index(b)] = r
    spec = [rating.rules[b] for b in rules]
    mask = 0
    for name in rating.direct_d_lists:
        mask |= 1 << lists.index(name)
    return RatingTables(
        rules=rules,
        rule_of=rule_of,
        deduction=np.array([s.deduction for s in spec], dtype=np.int64),
        cap=np.array([s.cap if s.cap is not None else 1 << 40 for s in spec], dtype=np.int64),
        direct_d=np.array([s.direct_d for s in spec], dtype=bool),
        no_a=np.array([s.no_a for s in spec], dtype=bool),
        start_full=rating.start.full,
        start_partial=rating.start.partial,
        thresholds=tuple(rating.grades[g].min_score for g in ("A", "B", "C")),
        direct_d_lists=mask,
    )


@dataclass
class Rated:
    """One world's rating of every company."""

    score: np.ndarray  # int64 [N]
    grade: np.ndarray  # uint8 [N] GRADE_CODES
    why: np.ndarray  # uint8 [N] WHY_* bits
    carried_only: np.ndarray  # bool [N] D by carry-over alone (it does not carry again)


def rate(
    tables: RatingTables,
    counts: np.ndarray,
    full: np.ndarray,
    listed: np.ndarray,
    previous: tuple[np.ndarray, np.ndarray, np.ndarray],
    no_income: np.ndarray,
    reps: tuple[np.ndarray, int],
) -> Rated:
    """Rate every company in one world. `counts` [N, R]: the year's live records per rule;
    `listed`: the company lists as they stood after the previous day's step 9 (bits);
    `previous`: (last grade, the grade before it, whether the last D was by carry-over
    alone); `reps`: (each company's legal representative, the number of adults)."""
    start = np.where(full, tables.start_full, tables.start_partial).astype(np.int64)
    deducted = np.minimum(tables.cap, tables.deduction * counts).sum(axis=1)
    score = np.maximum(start - deducted, 0)
    a_min, b_min, c_min = tables.thresholds
    grade = np.select([score >= a_min, score >= b_min, score >= c_min], [A, B, C], D)
    last, before_last, last_carried_only = previous
    direct_record = (counts[:, tables.direct_d] > 0).any(axis=1)
    on_list = (listed & tables.direct_d_lists) != 0
    carried = (last == D) & ~last_carried_only
    # Related D: every firm of a representative one of whose firms is D by a direct-D record.
    rep, adults = reps
    tainted = np.zeros(adults, dtype=bool)
    tainted[rep[direct_record]] = True
    related = tainted[rep]
    is_d = (grade == D) | direct_record | on_list | carried | related
    carried_only = is_d & carried & (grade != D) & ~direct_record & ~on_list & ~related
    no_a = ~full | (counts[:, tables.no_a] > 0).any(axis=1) | (before_last == D)
    grade = np.where(is_d, D, grade)
    demoted = (grade == A) & no_a
    grade = np.where(demoted, B, grade)
    m = no_income & ((grade == A) | (grade == B))
    grade = np.where(m, M, grade).astype(np.uint8)
    why = (
        direct_record * WHY_DIRECT_RECORD
        | on_list * WHY_LISTED
        | carried * WHY_CARRIED
        | related * WHY_RELATED
        | demoted * WHY_NO_A
        | m * WHY_NO_INCOME
    ).astype(np.uint8)
    return Rated(score, grade, why, carried_only)
