"""The companies' tables of a run (docs/model.md, "Companies"): companies at T, their records
with truth, appeals, list spells in both worlds, the ratings of each year in both worlds, and
one row per day. Company records are few (a few per company and year): they are kept in
memory and written at the end of the run."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from xinyong.companies.layer import Companies, CompanyDay
from xinyong.companies.lists import NONE, compile_company_lists
from xinyong.companies.params import SIZES
from xinyong.companies.rating import GRADE_NAMES, WHY_NAMES, compile_rating
from xinyong.observe import FALSE_REPORT, TRUTH_NAMES
from xinyong.scenario import Scenario
from xinyong.scheme.compile import SchemeTables
from xinyong.store import dictionary

WORLDS = ["recorded", "shadow"]


class CompanyRecorder:
    def __init__(
        self,
        companies: Companies,
        cities: list[str],
        *,
        first_company: int = 0,
        first_adult: int = 0,
        appeal_days: int = 60,
    ) -> None:
        self.co, self.cities = companies, cities
        self.first_company, self.first_adult = first_company, first_adult
        self.appeal_days = appeal_days
        self.records: list[tuple[np.ndarray, ...]] = []
        self.filed: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.decisions: list[tuple[np.ndarray, np.ndarray]] = []
        self.spells: list[np.ndarray] = []
        self.daily: list[dict] = []

    def day(self, d: CompanyDay) -> None:
        rec = d.records
        n = len(rec)
        ids = d.first_record_id + np.arange(n, dtype=np.int64)
        self.records.append(
            (ids, np.full(n, d.t, np.int32), rec.person.copy(), rec.behaviour.copy(),
             rec.channel.copy(), rec.truth.copy(), rec.actor.copy())
        )  # fmt: skip
        if len(d.appealed):
            self.filed.append(
                (ids[d.appealed], rec.person[d.appealed], np.full(len(d.appealed), d.t))
            )
        upheld = 0
        if d.decided is not None:
            self.decisions.append(d.decided)
            upheld = int(d.decided[1].sum())
        if len(d.spells):
            self.spells.append(d.spells)
        wrong = int((rec.truth != 0).sum())
        row = {
            "day": d.t,
            "city": self.cities[0] if len(self.cities) == 1 else None,
            "true_events": d.true_events,
            "records": n,
            "records_misattributed": int((rec.truth == 1).sum()),
            "records_false_report": int((rec.truth == FALSE_REPORT).sum()),
            "wrong_records": wrong,
            "appeals_filed": len(d.appealed),
            "appeals_decided": 0 if d.decided is None else len(d.decided[0]),
            "appeals_upheld": upheld,
            "exits": d.exits,
        }
        for li, name in enumerate(self.co.lists.names):
            row[f"list.{name}"] = int(d.list_count[0, li])
            row[f"shadow_list.{name}"] = int(d.list_count[1, li])
            row[f"wrongly_listed.{name}"] = int(d.wrong_count[li])
        self.daily.append(row)

    # -- end of run ----------------------------------------------------------------------------

    def tables(self) -> dict[str, pa.Table]:
        return {
            "companies": self._companies(),
            "company_records": self._records(),
            "company_appeals": self._appeals(),
            "company_spells": self._spells(),
            "company_ratings": self._ratings(),
            "company_daily": pa.Table.from_pylist(self.daily),
        }

    def _ids(self, local: np.ndarray) -> np.ndarray:
        return (local.astype(np.int64) + self.first_company).astype(np.int32)

    def _companies(self) -> pa.Table:
        co, pop = self.co, self.co.pop
        st = co.state
        cols = {
            "company": self._ids(np.arange(len(co))),
            "city": dictionary(pop.city, self.cities),
            "size": dictionary(pop.size, list(SIZES)),
            "full_indicators": pop.full,
            "risk": co.risk,
            "legal_rep": (pop.legal_rep.astype(np.int64) + self.first_adult).astype(np.int32),
            "grade": dictionary(st.grade[:, 0], GRADE_NAMES),
            "shadow_grade": dictionary(st.grade[:, 1], GRADE_NAMES),
            "deter": np.take(co.deter_table, co.deter_level),
        }
        for li, name in enumerate(co.lists.names):
            cols[f"on.{name}"] = (st.bits[:, 0] >> li & 1).astype(bool)
            cols[f"shadow_on.{name}"] = (st.bits[:, 1] >> li & 1).astype(bool)
        return pa.table(cols)

    def _records(self) -> pa.Table:
        cols = [np.concatenate(c) for c in zip(*self.records, strict=True)] if self.records else (
            [np.empty(0, t) for t in (np.int64, np.int32, np.int32, np.int16, np.int64,
                                      np.uint8, np.int32)]
        )  # fmt: skip
        ids, day, company, behaviour, channel, truth, actor = cols
        return pa.table(
            {
                "record_id": pa.array(ids, pa.int64()),
                "day": pa.array(day, pa.int32()),
                "company": self._ids(company),
                "behaviour": dictionary(behaviour, self.co.behaviours),
                "channel": dictionary(channel, self.co.observation.tables.names),
                "truth": dictionary(truth, list(TRUTH_NAMES)),
                "actor": pa.array(self._ids(actor), mask=truth == FALSE_REPORT),
            }
        )

    def _appeals(self) -> pa.Table:
        if self.filed:
            rid, company, day = (np.concatenate(c) for c in zip(*self.filed, strict=True))
        else:
            rid, company, day = np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int64)
        upheld = np.zeros(len(rid), dtype=bool)
        decided = np.zeros(len(rid), dtype=bool)
        if self.decisions:
            d_rid = np.concatenate([d[0] for d in self.decisions])
            pos = np.searchsorted(rid, d_rid)  # filed in increasing record order
            decided[pos] = True
            upheld[pos] = np.concatenate([d[1] for d in self.decisions])
        return pa.table(
            {
                "record_id": pa.array(rid, pa.int64()),
                "company": self._ids(company),
                "filed_day": pa.array(day, pa.int32()),
                "decision_day": pa.array(day + self.appeal_days, pa.int32()),
                "upheld": pa.array(upheld, mask=~decided),
            }
        )

    def _spells(self) -> pa.Table:
        st = self.co.state
        c, w, li = np.nonzero(st.since >= 0)  # still open at T
        still = np.stack([c, li, w, st.since[c, w, li], np.full(len(c), NONE)], axis=1)
        sp = np.concatenate([*self.spells, still.astype(np.int64)]) if self.spells else still
        sp = sp.astype(np.int64)
        return pa.table(
            {
                "company": self._ids(sp[:, 0]),
                "list": dictionary(sp[:, 1], self.co.lists.names),
                "world": dictionary(sp[:, 2], WORLDS),
                "start": pa.array(sp[:, 3], pa.int32()),
                "end": pa.array(sp[:, 4], pa.int32(), mask=sp[:, 4] < 0),
            }
        )

    def _ratings(self) -> pa.Table:
        n = len(self.co)
        parts = []
        for year, w, rated in self.co.ratings:
            cols = {
                "company": self._ids(np.arange(n)),
                "year": np.full(n, year, np.int32),
                "world": dictionary(np.full(n, w, np.int8), WORLDS),
                "score": rated.score.astype(np.int32),
                "grade": dictionary(rated.grade, GRADE_NAMES),
            }
            for bit, name in enumerate(WHY_NAMES):
                cols[name] = (rated.why >> bit & 1).astype(bool)
            parts.append(pa.table(cols))
        if not parts:
            empty = {"company": pa.int32(), "year": pa.int32(), "score": pa.int32()}
            schema = pa.schema([*empty.items(), ("world", pa.dictionary(pa.int16(), pa.string())),
                                ("grade", pa.dictionary(pa.int16(), pa.string())),
                                *((n, pa.bool_()) for n in WHY_NAMES)])  # fmt: skip
            return schema.empty_table()
        return pa.concat_tables(parts)


def company_meta(sc: Scenario, adults: SchemeTables) -> dict:
    """The companies' index tables for meta.json; `adults`: the adults' scheme tables."""
    co = sc.companies
    assert co is not None
    behaviours = list(co.behaviours)
    tb = compile_company_lists(sc, behaviours)
    rating = compile_rating(sc, behaviours, tb.names)
    return {
        "behaviours": behaviours,
        "channels": list(co.channels),
        "sizes": list(SIZES),
        "grades": GRADE_NAMES,
        "lists": tb.names,
        "list_kinds": dict(zip(tb.names, tb.kinds, strict=True)),
        "consequences": tb.consequences,
        "rating_rules": [] if rating is None else rating.rules,
        "person_lists": {adults.lists[li]: name for li, name in adults.represents.items()},
        "earliest_day": earliest_days(sc),
    }


def earliest_days(sc: Scenario) -> dict[str, list]:
    """Per company list, a lower bound on the days a company needs to be on it and the route
    in words ([days, route]; [None, None]: no route): a record or a rating puts a company on
    at once, an escalation only after its days on the list it escalates from."""
    co = sc.companies
    assert co is not None
    defs = {n: lst for p in co.packs for n, lst in sc.company_packs[p].lists.items()}
    found: dict[str, list] = {n: [None, None] for n in defs}
    for name, lst in defs.items():
        if lst.entry is not None or any(g.rated is not None for g in lst.while_any):
            found[name] = [0, "a record or a rating"]
    for _ in defs:  # a route is at most as long as the number of lists
        for name, lst in defs.items():
            routes = [found[name]]
            routes += [[found[g.list][0], found[g.list][1]] for g in lst.while_any if g.list]
            for src, other in defs.items():
                esc, start = other.escalate, found[src][0]
                if esc is not None and esc.to == name and start is not None:
                    routes.append([start + esc.after_days, f"{esc.after_days:,} days on {src}"])
            known = [r for r in routes if r[0] is not None]
            if known:
                found[name] = min(known, key=lambda r: r[0])
    return found
