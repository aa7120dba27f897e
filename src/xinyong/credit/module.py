"""Credit at run time (docs/credit.md): cohorts and credit files, the lender's book, loans
that end repaid or defaulted (a default and the lender's suit are true events of step 4),
applications decided in both worlds by the lender's policy, and the private score recomputed
every `score_period` days after step 11 in both worlds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from numba import njit

from xinyong.credit import companies
from xinyong.credit.explain import defaulters_entry
from xinyong.credit.loans import applicants
from xinyong.credit.params import (
    COHORTS,
    DEFAULT_BEHAVIOUR,
    LOAN_BAN,
    SUIT_BEHAVIOUR,
)
from xinyong.credit.score import BANDS, h_book, push_changes, rescore
from xinyong.entities import EntityTables
from xinyong.module import Context, Events, Module, Spec, Step
from xinyong.observe import CORRECT
from xinyong.prefetch import AHEAD, prefetch_read
from xinyong.scenario import GROUPS, Scenario
from xinyong.scheme.schema import MEMBER

if TYPE_CHECKING:
    from xinyong.audit.registry import ModuleAudit

STREAMS = ("population", "loans", "applications", "events")
WINDOW_DAYS = 365  # negative records of days t-364 .. t lower B in the networked what-if
# Why an application was refused in the recorded world: bits of `reason`.
BAN, NO_FILE, HISTORY, SCORE = 1, 2, 4, 8
REASONS = ((BAN, "loan_ban"), (NO_FILE, "no_file"), (HISTORY, "history"), (SCORE, "score"))
LENDERS = ("file", "score", "file_or_score")  # the lender's policies (CreditParams.lender)
APPLICATION_COLUMNS = (
    "day", "adult", "thin", "h_book", "score", "score_shadow", "history_zero", "ban",
    "ban_shadow", "approved", "approved_shadow", "reason",
)  # fmt: skip


def lending_lists(ctx: Context) -> tuple[np.ndarray, int]:
    """Per city of this engine, the lists whose members hold `loan_ban` (a bit mask); and the
    bit of the court's `defaulters` list (0 without one)."""
    sc, names = ctx.scenario, ctx.tables.scheme.lists
    cities = sc.cities if ctx.city is None else [sc.cities[ctx.city]]
    national = sc.national()
    ban = np.zeros(len(cities), dtype=np.int64)
    for k, city in enumerate(cities):
        for pack in [sc.packs[city.pack], *national]:
            for name, lst in pack.lists.items():
                if any(c.name == LOAN_BAN and c.target == MEMBER for c in lst.consequences):
                    ban[k] |= 1 << names.index(name)
    return ban, (1 << names.index("defaulters")) if "defaulters" in names else 0


@njit(cache=True, nogil=True)
def decide(
    a: np.ndarray,  # the applicants (adults' rows, ascending)
    bits: np.ndarray,  # the scheme's list bits [adults, 2]
    city: np.ndarray,
    ban_mask: np.ndarray,  # per city: the lists whose members hold a loan ban
    repaid: np.ndarray,
    defaulted: np.ndarray,
    has_file: np.ndarray,
    score: np.ndarray,  # the private score [adults, 2]
    score_listed: np.ndarray,
    history_min: float,
    score_min: int,
    lender: int,  # index in LENDERS
) -> tuple[np.ndarray, ...]:
    """Each application decided in both worlds: (no file, h_book, score [n, 2], the score's
    history zeroed by a listing, ban [n, 2], approved [n, 2], the recorded world's reason for
    a refusal (bits of BAN, NO_FILE, HISTORY, SCORE; 0 when approved)). One pass reading
    each applicant's rows a few ahead, where NumPy's gathers waited on memory for each array
    in turn (1.2 ms a day for 2,600 applicants at 1 M adults)."""
    n = a.shape[0]
    thin = np.empty(n, dtype=np.bool_)
    hb = np.empty(n, dtype=np.float64)
    scores = np.empty((n, 2), dtype=score.dtype)
    listed = np.empty(n, dtype=np.bool_)
    ban = np.empty((n, 2), dtype=np.bool_)
    approved = np.empty((n, 2), dtype=np.bool_)
    reason = np.empty(n, dtype=np.uint8)
    for x in range(n):
        if x + AHEAD < n:
            ahead = a[x + AHEAD]
            prefetch_read(bits, 2 * ahead)
            prefetch_read(score, 2 * ahead)
            prefetch_read(repaid, ahead)
            prefetch_read(defaulted, ahead)
        i = a[x]
        book = h_book(repaid[i], defaulted[i])
        file_ok = has_file[i] and book >= history_min
        mask = ban_mask[city[i]]
        for w in range(2):
            banned = (np.int64(bits[i, w]) & mask) != 0
            score_ok = score[i, w] >= score_min
            if lender == 0:
                policy = file_ok
            elif lender == 1:
                policy = score_ok
            else:
                policy = file_ok or score_ok
            ban[x, w] = banned
            approved[x, w] = policy and not banned
            scores[x, w] = score[i, w]
        why = BAN if ban[x, 0] else 0
        if lender != 1:
            why |= NO_FILE if not has_file[i] else (0 if file_ok else HISTORY)
        if lender != 0 and score[i, 0] < score_min:
            why |= SCORE
        thin[x] = not has_file[i]
        hb[x] = book
        listed[x] = score_listed[i]
        reason[x] = 0 if approved[x, 0] else why
    return thin, hb, scores, listed, ban, approved, reason


class CreditModule(Module):
    checkpointed = (
        "has_file", "loan_app", "repaid", "defaulted", "score", "sums", "ghost_score",
        "score_h", "score_listed",
        "due", "apps", "n_apps", "ended", "bands", "window", "counts", "rngs",
    )  # fmt: skip
    # C reads the neighbours' previous scores, those in other cities too.
    shared = ("score",)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        p, pop, n = ctx.params, ctx.pop, ctx.pop.adults
        steps = [Step(after=0, method="lend")]
        if p.records_to_private:
            steps.append(Step(after=11, method="note_records"))
        steps.append(Step(after=11, method="rescore", every=p.score_period))
        self.steps = tuple(steps)
        self.rngs = {
            name: np.random.default_rng(s) for name, s in zip(STREAMS, ctx.seeds, strict=False)
        }
        draw = self.rngs["population"]
        # Fixed for the run (regenerated from the seed on resume).
        self.cohort = (draw.random(n) >= p.young_share).astype(np.uint8)  # 0 young
        shares = np.array([p.file_share.young, p.file_share.established])
        self.has_file = draw.random(n) < shares[self.cohort]
        self.file_day0 = self.has_file.copy()
        self.p_default = np.minimum(1.0, p.default_base * pop.risk)
        self.behaviour = np.minimum(1.0, pop.civic / 3.0)
        self.capacity = np.array([p.capacity.young, p.capacity.established])[self.cohort]
        self.ban_mask, self.defaulters_bit = lending_lists(ctx)
        names = ctx.tables.world.behaviours
        self.default_beh = names.index(DEFAULT_BEHAVIOUR)
        self.suit_beh = names.index(SUIT_BEHAVIOUR) if SUIT_BEHAVIOUR in names else -1
        self.negative = ctx.tables.world.negative.astype(bool)
        # The lender's book and the loans.
        self.loan_app = np.full(n, -1, dtype=np.int64)  # the active loan's application row
        self.repaid = np.zeros(n, dtype=np.int32)
        self.defaulted = np.zeros(n, dtype=np.int32)
        self.due: dict[int, np.ndarray] = {}  # end day -> borrowers (this engine's rows)
        self.apps: dict[str, list[np.ndarray]] = {c: [] for c in APPLICATION_COLUMNS}
        self.n_apps = 0
        self.ended: list[np.ndarray] = []  # per ending day: [application row, defaulted]
        self.pending: Events | None = None  # today's defaults and suits, for step 4
        # The private score per world, and for explaining: the recorded H and whether the
        # court's list zeroed it at the last computation.
        self.score = np.zeros((n, 2), dtype=np.int16)
        self.scratch = np.empty_like(self.score)  # the computation's new scores
        # C's state: per adult, the sum over its neighbours of (score - 350), and the scores
        # of its neighbours in other cities as those sums last counted them (350: nothing).
        self.sums = np.zeros((2, n), dtype=np.int64)  # a row per world: one thread each
        self.ghost_score = np.full((len(pop.ghosts), 2), 350, dtype=np.int16)
        self.score_h = np.zeros(n, dtype=np.float64)
        self.score_listed = np.zeros(n, dtype=bool)
        self.bands: list[np.ndarray] = []  # per computation: [day, world, count per band]
        # The networked what-if: the window's negative records by day (person, correct,
        # record id, not deleted on appeal), and each adult's count of them per world.
        self.window: dict[int, tuple[np.ndarray, ...]] = {}
        self.counts = np.zeros((n, 2), dtype=np.int32)
        self.compute(-1)  # before day 0

    def connect(self) -> None:
        """The lender's company side (credit/companies.py), over the engine's companies if
        it has any, on the module's streams after the adults' side's."""
        p = self.ctx.params
        view = self.ctx.views.get(companies.KIND) or companies.NoCompanies(p)
        self.firms = companies.CompanyLending(p, view, self.ctx.seeds[companies.FIRST_STREAM :])
        self.checkpointed = (
            *type(self).checkpointed,
            *(f"firms.{name}" for name in companies.CompanyLending.checkpointed),
        )

    # -- step 4: loans due, then applications --------------------------------------------

    def lend(self, t: int) -> None:
        """Run at the start of day t, where the lists are as after the previous day's step
        9: nothing the lender reads changes before step 4, where its events go."""
        p = self.ctx.params
        actor: list[np.ndarray] = []
        beh: list[np.ndarray] = []
        due = self.due.pop(t, None)
        if due is not None and len(due):
            rng = self.rngs["loans"]
            bad = rng.random(len(due)) < self.p_default[due]
            debtors = due[bad]
            sued = debtors[rng.random(len(debtors)) < p.sue_share]
            self.repaid[due[~bad]] += 1  # a borrower has one loan at a time
            self.defaulted[debtors] += 1
            self.ended.append(np.stack([self.loan_app[due], bad.astype(np.int64)]))
            self.loan_app[due] = -1
            actor += [debtors, sued]
            beh += [np.full(len(debtors), self.default_beh), np.full(len(sued), self.suit_beh)]
        self.apply(t)
        if actor and sum(len(a) for a in actor):
            who = np.concatenate(actor).astype(np.int32)
            what = np.concatenate(beh).astype(np.int16)
            self.pending = (who, what, self.rngs["events"].random(len(who)))
        self.firms.lend(t)

    def apply(self, t: int) -> None:
        """Each adult without an active loan applies with probability loan_rate (`applicants`)
        and is decided in both worlds."""
        p = self.ctx.params
        a = applicants(self.rngs["applications"], p.loan_rate, self.loan_app)
        if not len(a):
            return
        thin, hb, score, listed, ban, approved, reason = decide(
            a, self.ctx.scheme.state.bits, self.ctx.pop.city, self.ban_mask, self.repaid,
            self.defaulted, self.has_file, self.score, self.score_listed, p.history_min,
            p.score_min, LENDERS.index(p.lender),
        )  # fmt: skip
        rows = self.n_apps + np.arange(len(a), dtype=np.int64)
        self.n_apps += len(a)
        for name, column in zip(APPLICATION_COLUMNS, (
            np.full(len(a), t, dtype=np.int32), a.astype(np.int32), thin, hb,
            score[:, 0], score[:, 1], listed, ban[:, 0], ban[:, 1],
            approved[:, 0], approved[:, 1], reason,
        ), strict=True):  # fmt: skip
            self.apps[name].append(column)
        lent = approved[:, 0]
        self.loan_app[a[lent]] = rows[lent]
        self.has_file[a[lent]] = True
        if lent.any():
            self.due[t + p.loan_term_days] = a[lent]

    def true_events(self, t: int) -> Events | None:
        events, self.pending = self.pending, None
        return events

    # -- step 12: the private score --------------------------------------------------------

    def note_records(self, t: int) -> None:
        """Keep each adult's count of negative records of the last WINDOW_DAYS days in both
        worlds (recorded: all against the adult, less those deleted on appeal; shadow: the
        correct ones), for the behaviour factor of the networked what-if. Cost grows with
        records: today's are added, those of day t - 365 taken off, deletions looked up."""
        book = self.ctx.today.book
        assert book is not None
        rec = book.records
        neg = np.flatnonzero(self.negative[rec.behaviour])
        person = rec.person[neg].astype(np.int32)
        correct = rec.truth[neg] == CORRECT
        self.window[t] = (person, correct, neg.astype(np.int64) + book.first_record_id,
                          np.ones(len(neg), dtype=bool))  # fmt: skip
        np.add.at(self.counts[:, 0], person, 1)
        np.add.at(self.counts[:, 1], person[correct], 1)
        if book.decided is not None:
            ids, upheld = book.decided
            self.delete(np.sort(np.asarray(ids)[upheld]).astype(np.int64))
        old = self.window.pop(t - WINDOW_DAYS, None)
        if old is not None:
            person, correct, _, live = old
            np.subtract.at(self.counts[:, 0], person[live], 1)
            np.subtract.at(self.counts[:, 1], person[correct], 1)

    def delete(self, ids: np.ndarray) -> None:
        """Records deleted on appeal no longer count in the recorded world."""
        for person, _, rid, live in self.window.values():
            if not len(ids) or not len(rid) or ids[-1] < rid[0] or ids[0] > rid[-1]:
                continue
            at = np.minimum(np.searchsorted(rid, ids), len(rid) - 1)
            rows = at[(rid[at] == ids) & live[at]]
            live[rows] = False
            np.subtract.at(self.counts[:, 0], person[rows], 1)

    def rescore(self, t: int) -> None:
        if t >= 1:  # day 0's computation is the one before it
            self.compute(t)

    def shares_on(self, t: int) -> bool:
        return t >= 1 and t % self.ctx.params.score_period == 0  # the days `rescore` computes

    def compute(self, t: int) -> None:
        """Both worlds' private scores from the state after step 11 of day t (t = -1: before
        day 0, with C = 0.5 and nobody listed)."""
        p, pop = self.ctx.params, self.ctx.pop
        listed = self.defaulters_bit if p.court_list_to_private and t >= 0 else 0
        records = self.counts if p.records_to_private else self.counts[:0]
        n = len(self.score)
        if len(pop.ghosts) and t >= 0:  # the other cities' scores, as they stand now
            if "score" not in self.ghosts:
                raise RuntimeError("the neighbours' scores in other cities were not passed on")
            self.push(self.ghost_score, self.ghosts["score"], n)
            self.ghost_score[...] = self.ghosts["score"]

        def part(lo: int, hi: int) -> np.ndarray:
            bands = np.zeros((2, len(BANDS)), dtype=np.int64)
            rescore(
                self.sums, self.scratch, self.has_file, self.repaid, self.defaulted,
                self.ctx.scheme.state.bits, listed, self.behaviour, records,
                float(p.records_scale), self.capacity, float(p.identity),
                float(p.thin_history), t < 0, pop.nbr_degree, self.score_h, self.score_listed,
                bands, lo, hi,
            )  # fmt: skip
            return bands

        halves = self.ctx.halves
        if halves is not None and halves.split(n):  # two halves of the adults at once
            first, second = halves.run(lambda: part(0, n // 2), lambda: part(n // 2, n))
            bands = first + second
        else:
            bands = part(0, n)
        old = np.full_like(self.score, 350) if t < 0 else self.score  # before day 0: no sums
        self.push(old, self.scratch, 0)
        self.score[...] = self.scratch
        for w in (0, 1):
            self.bands.append(np.concatenate([[max(t, 0), w], bands[w]]).astype(np.int64))

    def push(self, old: np.ndarray, new: np.ndarray, first_row: int) -> None:
        """Changed scores (of adults from graph row 0, or of ghosts from row n) into their
        neighbours' sums: each world on a thread of its own where the adults are many."""
        pop, n = self.ctx.pop, len(self.score)

        def world(w: int) -> None:
            push_changes(
                old, new, w, first_row, n, pop.nbr_block, pop.nbr_degree, pop.nbr, self.sums[w]
            )

        halves = self.ctx.halves
        if halves is not None and halves.split(len(old)):
            halves.run(lambda: world(0), lambda: world(1))
        else:
            world(0)
            world(1)

    # -- tables ----------------------------------------------------------------------------

    def tables(self) -> dict[str, pa.Table]:
        first = self.ctx.first_adult
        n_apps = self.n_apps
        cols = {
            name: (np.concatenate(parts) if parts else np.empty(0, dtype=dtype))
            for (name, parts), dtype in zip(self.apps.items(), APPLICATION_DTYPES, strict=True)
        }
        outcome = np.full(n_apps, -1, dtype=np.int8)
        for rows, bad in self.ended:
            outcome[rows] = bad
        term = self.ctx.params.loan_term_days
        adult = cols["adult"].astype(np.int64)
        group = self.ctx.pop.group
        codes = cols["reason"]
        reasons = pa.DictionaryArray.from_arrays(
            pa.array(codes.astype(np.int8), mask=codes == 0),
            pa.array([", ".join(name for bit, name in REASONS if r & bit) for r in range(16)]),
        )
        apps = pa.table(
            {
                "day": cols["day"],
                "adult": (adult + first).astype(np.int32),
                "cohort": _names(self.cohort[adult], COHORTS),
                "group": _names(group[adult], GROUPS),
                "thin": cols["thin"],
                "creditworthy": self.p_default[adult] <= self.ctx.params.worthy_max,
                "h_book": cols["h_book"],
                "score": cols["score"].astype(np.int16),
                "score_shadow": cols["score_shadow"].astype(np.int16),
                "history_zero": cols["history_zero"],
                "loan_ban": cols["ban"],
                "loan_ban_shadow": cols["ban_shadow"],
                "approved": cols["approved"],
                "approved_shadow": cols["approved_shadow"],
                "wrongly_denied": ~cols["approved"] & cols["approved_shadow"],
                "reason": reasons,
                "end_day": pa.array(
                    np.where(cols["approved"], cols["day"] + term, 0).astype(np.int32),
                    mask=~cols["approved"],
                ),
                "outcome": pa.DictionaryArray.from_arrays(
                    pa.array(np.maximum(outcome, 0), mask=outcome < 0),
                    pa.array(["repaid", "defaulted"]),
                ),
            }
        )
        n = len(self.cohort)
        bits = self.ctx.scheme.state.bits[:, 0]
        adults = pa.table(
            {
                "adult": (np.arange(n, dtype=np.int64) + first).astype(np.int32),
                "cohort": _names(self.cohort, COHORTS),
                "group": _names(group, GROUPS),
                "file_day0": self.file_day0,
                "file": self.has_file,
                "repaid": self.repaid,
                "defaulted": self.defaulted,
                "creditworthy": self.p_default <= self.ctx.params.worthy_max,
                "private_score": self.score[:, 0],
                "private_score_shadow": self.score[:, 1],
                "on_defaulters": (bits & self.defaulters_bit) != 0,
            }
        )
        bands = np.array(self.bands, dtype=np.int64).reshape(-1, 2 + len(BANDS))
        k = len(BANDS)
        scores = pa.table(
            {
                "day": np.repeat(bands[:, 0], k).astype(np.int32),
                "world": _names(np.repeat(bands[:, 1], k), ("recorded", "shadow")),
                "band": _names(np.tile(np.arange(k), len(bands)), BANDS),
                "adults": bands[:, 2:].ravel(),
            }
        )
        return {
            "credit_applications": apps, "credit_adults": adults, "credit_scores": scores,
            **self.firms.tables(),
        }  # fmt: skip

    # -- the run's readers -----------------------------------------------------------------

    @classmethod
    def meta(cls, sc: Scenario, adults: EntityTables) -> dict[str, Any]:
        p = sc.credit
        return {
            "company_loans": getattr(sc, "companies", None) is not None,
            "lender": p.lender,
            "score_min": p.score_min,
            "history_min": p.history_min,
            "court_list_to_private": p.court_list_to_private,
            "records_to_private": p.records_to_private,
            "score_period": p.score_period,
            "thin_history": p.thin_history,
            "defaulters_entry": defaulters_entry(sc),
            "tax_loan_grades": list(p.tax_loan_grades),
        }

    @classmethod
    def audit(cls, spec: Spec) -> ModuleAudit:
        from xinyong.credit.audit import AUDIT

        return AUDIT


APPLICATION_DTYPES = (
    np.int32, np.int32, bool, np.float64, np.int16, np.int16, bool, bool, bool, bool, bool,
    np.uint8,
)  # fmt: skip


def _names(index: np.ndarray, names: tuple[str, ...]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(
        pa.array(np.asarray(index, dtype=np.int8)), pa.array(list(names))
    )
