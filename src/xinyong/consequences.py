"""Layer 5, consequences: sanctions and privileges follow list membership, for the member and
through relations (a parent's lists reach the children); sanctions may carry effects on the
member's behaviour; the court's list is left by settling; victims of wrong records appeal
(docs/model.md, steps 2, 3, 10, 11).

Sanctions are not stored per person: they are on exactly while a granting list is, so they
are read off the list bits through per-city masks. Deterrence (step 10) is applied where each
negative record is scored, which is equivalent because it is first read on the next day.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from xinyong import randomness
from xinyong.observe import CORRECT, Records
from xinyong.params import PER_CITY
from xinyong.scenario import Scenario
from xinyong.schedule import by_day
from xinyong.scheme.compile import FOREVER, NO_TIER, SchemeTables
from xinyong.scheme.lists import RECHECK
from xinyong.scheme.schema import MEMBER

if TYPE_CHECKING:
    from xinyong.scheme.layer import Scheme, Scored


@dataclass
class Reach:
    """Lists whose sanctions or privileges reach the targets of one relation, per city of
    the member (bit masks)."""

    sanction: np.ndarray = field(metadata=PER_CITY)  # int64 [K]
    privilege: np.ndarray = field(metadata=PER_CITY)  # int64 [K]


@dataclass
class ConsequenceTables:
    """Consequences' parameters, compiled for one entity kind."""

    # Behaviour effects, one per distinct (context, multiplier); effect_mask[k, e]: the lists
    # whose sanctions carry effect e in city k.
    effect_contexts: list[str]
    multipliers: list[float]
    effect_mask: np.ndarray = field(metadata=PER_CITY)  # int64 [K, E]
    relations: dict[str, Reach]
    assoc_behaviour: int
    assoc_bit: int  # bit mask of the association list (0 if no such list)
    # For the audit: per list, the union over packs; and per pack, each list's own.
    by_list: dict[str, list[dict]]
    by_pack: dict[str, dict[str, list[dict]]]

    @property
    def affected_mask(self) -> np.ndarray:
        """Per city, the lists that carry any behaviour effect."""
        mask = np.zeros(self.effect_mask.shape[0], dtype=np.int64)
        for e in range(self.effect_mask.shape[1]):
            mask |= self.effect_mask[:, e]
        return mask


def compile_consequences(
    sc: Scenario, scheme: SchemeTables, relations: tuple[str, ...]
) -> ConsequenceTables:
    lidx = {name: i for i, name in enumerate(scheme.lists)}
    K = len(sc.cities)
    use_effects = sc.consequences.behaviour_effects
    effects: list[tuple[str, float]] = []
    masks: dict[tuple[str, float], np.ndarray] = {}
    reach = {r: Reach(np.zeros(K, np.int64), np.zeros(K, np.int64)) for r in relations}
    national = sc.national()
    for k, city in enumerate(sc.cities):
        for pack in [sc.packs[city.pack], *national]:
            for name, lst in pack.lists.items():
                bit = 1 << lidx[name]
                for c in lst.consequences:
                    if c.target != MEMBER:
                        masks_of = reach[c.target]
                        side = masks_of.sanction if lst.kind == "sanction" else masks_of.privilege
                        side[k] |= bit
                    for eff in c.effects if use_effects else ():
                        key = (eff.context, eff.multiplier)
                        if key not in masks:
                            effects.append(key)
                            masks[key] = np.zeros(K, dtype=np.int64)
                        masks[key][k] |= bit
    by_list: dict[str, list[dict]] = {}
    by_pack: dict[str, dict[str, list[dict]]] = {}
    for pid, pack in [*sc.packs.items(), *((p.id, p) for p in national[len(sc.national_packs) :])]:
        for name, lst in pack.lists.items():
            rows = [
                c.model_dump(exclude={"effects"}) | {"kind": lst.kind} for c in lst.consequences
            ]
            by_pack.setdefault(pid, {})[name] = rows
            union = by_list.setdefault(name, [])
            union += [r for r in rows if r not in union]
    cons = sc.consequences
    effect_mask = np.zeros((K, len(effects)), dtype=np.int64)
    for e, key in enumerate(effects):
        effect_mask[:, e] = masks[key]
    return ConsequenceTables(
        effect_contexts=[c for c, _ in effects],
        multipliers=[m for _, m in effects],
        effect_mask=effect_mask,
        relations=reach,
        assoc_behaviour=list(sc.behaviours).index(cons.association_behaviour),
        assoc_bit=(1 << lidx[cons.association_list]) if cons.association_list in lidx else 0,
        by_list=by_list,
        by_pack=by_pack,
    )


def reached(
    mask_by_city: np.ndarray, bits: np.ndarray, city: np.ndarray, sources: tuple[np.ndarray, ...]
) -> np.ndarray:
    """For each target of a relation, whether any of its members (`sources`: one column per
    link, -1 none; the target's city is its members') holds a list of `mask_by_city`."""
    m = np.take(mask_by_city, city)
    has = np.zeros(len(city), dtype=bool)
    for source in sources:
        linked = source >= 0
        has[linked] |= (np.take(bits, source[linked]) & m[linked]) != 0
    return has


@dataclass
class StartOfDay:
    """The recorded lists as they stood after the previous day's step 9."""

    affected: np.ndarray  # members under a behaviour effect (ids ascending)
    effects_of: np.ndarray  # int64 per affected member: bit e = effect e is on
    assoc: np.ndarray  # members on the association list
    settle: np.ndarray  # members on a list left by settlement
    # The affected members at the previous start of day and the ids that may have entered or
    # left since, for step 4's flags (world.World.behaviour); not checkpointed.
    since: tuple[np.ndarray, np.ndarray] | None = field(default=None, metadata={"transient": True})


class Consequences:
    """Consequences for one entity kind: who holds what at the start of a day, settlement
    (step 3), appeals (steps 2 and 11) and the records that keep listings alive."""

    def __init__(
        self,
        sc: Scenario,
        tables: ConsequenceTables,
        scheme: Scheme,
        rng_court: np.random.Generator,
        rng_appeals: np.random.Generator,
    ) -> None:
        self.tables, self.scheme = tables, scheme
        self.settings, self.pi, self.days = sc.appeals, sc.consequences.pi, sc.days
        self.rng_court, self.rng_appeals = rng_court, rng_appeals
        st = scheme.tables
        k = len(st.city_pack)
        self.masks = {
            "affected": tables.affected_mask,
            "assoc": np.full(k, tables.assoc_bit, dtype=np.int64),
            "settle": np.full(k, st.settle_mask, dtype=np.int64),
        }
        self.effects_by_byte = effects_by_byte(tables.effect_mask, scheme.state.bits.itemsize)
        # Nobody is listed before day 0.
        self.members = {name: np.empty(0, dtype=np.int32) for name in self.masks}
        self.appeals: dict[int, list[dict[str, np.ndarray]]] = defaultdict(list)
        # Record-entered listings and tier caps of the recorded world, for appeals (reading
        # 16): person -> slot -> [[record_id, day, end(, tier)]]; slot -1 is the tier cap.
        self.kept_by: dict[int, dict[int, list[list[int]]]] = defaultdict(lambda: defaultdict(list))
        # Per city and behaviour: the direct listings its records enter, as (slot, days), and
        # the tier it caps (NO_TIER: none). Read for each record with effects, hundreds a
        # day, so kept as Python values (indexing the arrays made that 10 us a record).
        self.effect_rules = [
            [
                (
                    [
                        (int(st.direct_slot[li]), int(st.direct_days[k, b, li]))
                        for li in np.flatnonzero(st.direct_days[k, b]).tolist()
                    ],
                    int(st.tier_cap[st.city_pack[k], b]),
                )
                for b in range(len(st.behaviours))
            ]
            for k in range(len(st.city_pack))
        ]

    def start_of_day(self, moved: np.ndarray | None) -> StartOfDay:
        """Kept up to date from the members whose recorded lists changed (ids ascending)."""
        bits, city = self.scheme.state.bits[:, 0], self.scheme.city
        since = None
        if moved is not None and len(moved):
            since = (self.members["affected"], moved)
            # Lists with the same mask have the same members (every built-in scenario's
            # affected and association lists: the blacklist), merged once and shared (the
            # arrays are only read).
            merged: dict[bytes, np.ndarray] = {}
            for name, members in self.members.items():
                mask = self.masks[name]
                key = mask.tobytes()
                if key not in merged:
                    merged[key] = update_members(members, moved, bits, city, mask)
                self.members[name] = merged[key]
        affected = self.members["affected"]
        effects_of = (
            effects_on(affected, bits, city, self.effects_by_byte)
            if len(affected)
            else np.zeros(0, dtype=np.int64)
        )
        members = self.members
        return StartOfDay(affected, effects_of, members["assoc"], members["settle"], since)

    def settle(self, t: int, members: np.ndarray) -> int:
        """Step 3: settlement ends record-entered listings at once; returns how many settled."""
        if not len(members):  # no draws to make: the stream stays where it is
            return 0
        st = self.scheme.state
        settled = randomness.drawing(
            self.rng_court,
            settle,
            self.pi,
            members,
            self.scheme.tables.settle_mask,
            st.bits,
            self.scheme.tables.direct_slot,
            st.direct_end,
        )
        if len(settled):
            self.scheme.reevaluate(t, settled, np.full(len(settled), RECHECK, np.uint8), False)
        return len(settled)

    def decide_appeals(self, t: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """Step 2: the persons whose points an upheld appeal gave back, and the decisions
        (record ids, upheld)."""
        due = self.appeals.pop(t, [])
        if not due:
            return np.empty(0, dtype=np.int32), None
        ap = {k: np.concatenate([d[k] for d in due]) for k in due[0]}
        upheld = self.rng_appeals.random(len(ap["person"])) < self.settings.upheld
        live = upheld & ((ap["expiry_day"] < 0) | (ap["expiry_day"] > t))
        person = ap["person"][live]
        delta = np.zeros((person.size, 2), dtype=np.int32)
        delta[:, 0] = ap["applied"][live]
        self.scheme.give_back(person, delta)
        # The record is gone: its expiry must no longer give the points back a second time.
        for day, sel in by_day(ap["expiry_day"][live], t + 1, self.days):
            self.scheme.expiries[day].append((person[sel], -delta[sel]))
        with_effects = upheld & ap["effects"]
        if with_effects.any():
            self.end_effects(t, ap["record_id"][with_effects], ap["person"][with_effects])
        return person, (ap["record_id"], upheld)

    def end_effects(self, t: int, record_ids: np.ndarray, persons: np.ndarray) -> None:
        """An upheld appeal ends the listings and tier caps its record alone kept alive."""
        st, direct_slot = self.scheme.state, self.scheme.tables.direct_slot
        for rid, p in zip(record_ids.tolist(), persons.tolist(), strict=True):
            for slot, entries in self.kept_by[p].items():
                if not any(e[0] == rid for e in entries):
                    continue
                entries[:] = [e for e in entries if e[0] != rid]
                if slot < 0:
                    st.tiercap_end[p, 0, :] = -1
                    for _, _, end, level in entries:
                        st.tiercap_end[p, 0, level] = max(st.tiercap_end[p, 0, level], end)
                    continue
                li = int(np.flatnonzero(direct_slot == slot)[0])
                spell = st.since[p, 0, li] if st.bits[p, 0] >> li & 1 else t + 1
                live = [e for e in entries if e[1] >= spell]
                st.direct_end[p, 0, slot] = max((e[2] for e in live), default=-1)
        persons = np.unique(persons).astype(np.int32)
        self.scheme.reevaluate(t, persons, np.full(len(persons), RECHECK, np.uint8), False)

    def keep_effects(self, t: int, rec: Records, scored: Scored, first_id: int) -> None:
        """Remember which records keep which listings alive, for appeals (reading 16)."""
        with_effect = scored.with_effect
        persons = rec.person[with_effect]
        for r, p, b, k, expiry in zip(
            with_effect.tolist(),
            persons.tolist(),
            rec.behaviour[with_effect].tolist(),
            self.scheme.city[persons].tolist(),
            scored.expiry_day[with_effect].tolist(),
            strict=True,
        ):
            listings, tier = self.effect_rules[k][b]
            for slot, days in listings:
                end = FOREVER if days < 0 else min(t + days - 1, FOREVER - 1)
                self.kept_by[p][slot].append([first_id + r, t, end])
            if tier != NO_TIER:
                self.kept_by[p][-1].append([first_id + r, t, expiry - 1, tier])

    def file_appeals(self, t: int, rec: Records, scored: Scored, first_id: int) -> np.ndarray:
        """Step 11: the records (indices) whose victims appeal today."""
        idx = file_appeals(
            self.rng_appeals,
            self.settings.alpha,
            self.scheme.rules.negative,
            rec.behaviour,
            rec.truth,
            rec.positive,
        )
        decision = t + self.settings.appeal_days
        if decision < self.days and idx.size:
            self.appeals[decision].append(
                {
                    "record_id": first_id + idx,
                    "person": rec.person[idx],
                    "applied": scored.applied[idx, 0],
                    "expiry_day": scored.expiry_day[idx],
                    "effects": scored.effect[idx],
                }
            )
        return idx


@njit(cache=True, nogil=True, inline="always")
def _first_not_below(values: np.ndarray, i: int, p: int) -> int:
    """The first index from i whose value is not below p (`values` ascending), by steps
    doubling from i, then bisection: the changed members are close to each other's in
    update_members, where bisecting all the rest took 100 ns a member."""
    step = 1
    lo = i  # values[lo - 1] < p, or lo == i
    hi = i
    while hi < values.shape[0] and values[hi] < p:
        lo = hi + 1
        hi = i + step
        step *= 2
    hi = min(hi, values.shape[0])
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] < p:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def update_members(
    members: np.ndarray,
    moved: np.ndarray,
    bits0: np.ndarray,
    city: np.ndarray,
    mask_by_city: np.ndarray,
) -> np.ndarray:
    """The members whose recorded lists meet a city's mask, kept up to date from the last
    members and the ones whose lists changed since (both in id order): a merge, so the cost
    grows with the changes and the members, not with the population. The members between
    two changed ones are found by doubling steps and bisection and copied as one block
    (S1's blacklist: 300 k members, a few thousand changed a day)."""
    out = np.empty(members.shape[0] + moved.shape[0], dtype=np.int32)
    n = i = 0
    for j in range(moved.shape[0]):
        p = moved[j]
        k = _first_not_below(members, i, p)
        for x in range(i, k):  # a loop: slicing cost more than the few members between
            out[n] = members[x]
            n += 1
        i = k
        if i < members.shape[0] and members[i] == p:
            i += 1  # re-decided here
        if bits0[p] & mask_by_city[city[p]]:
            out[n] = p
            n += 1
    out[n : n + members.shape[0] - i] = members[i:]
    n += members.shape[0] - i
    # Not copied: the spare room is at most one slot per changed member.
    return out[:n]


def effects_by_byte(effect_mask: np.ndarray, width: int) -> np.ndarray:
    """by_byte[k, j, v]: the behaviour effects (bit e: effect e) that the lists of byte j of a
    member's list bits carry in city k when that byte is v. An effect is on if any list it
    rides on is, so a member's effects are the OR over its bytes (`effects_on`)."""
    values = np.arange(256, dtype=np.int64)
    by_byte = np.zeros((effect_mask.shape[0], width, 256), dtype=np.int64)
    for j in range(width):
        for e in range(effect_mask.shape[1]):
            carried = ((values[None, :] << (8 * j)) & effect_mask[:, e : e + 1]) != 0
            by_byte[:, j] |= carried.astype(np.int64) << e
    return by_byte


@njit(cache=True, nogil=True)
def effects_on(
    members: np.ndarray, bits: np.ndarray, city: np.ndarray, by_byte: np.ndarray
) -> np.ndarray:
    """Each member's behaviour effects (bit e: effect e), from the lists it is on (`bits`), a
    lookup per byte of them (`effects_by_byte`): S1's blacklist at 1 M adults took 0.92 ms
    a day testing each effect's lists in turn, 0.65 ms so."""
    out = np.empty(members.shape[0], dtype=np.int64)
    for i in range(members.shape[0]):
        p = members[i]
        on, row = np.uint64(bits[p]), city[p]
        effects = by_byte[row, 0, on & np.uint64(255)]
        for j in range(1, by_byte.shape[1]):
            effects |= by_byte[row, j, (on >> np.uint64(8 * j)) & np.uint64(255)]
        out[i] = effects
    return out


@njit(cache=True, nogil=True)
def settle(
    words: np.ndarray,
    pi: float,
    members: np.ndarray,
    settle_mask: int,
    bits: np.ndarray,
    direct_slot: np.ndarray,
    direct_end: np.ndarray,
) -> np.ndarray:
    """Each listed person settles with probability pi, one draw per settle-list they are on;
    settling ends the recorded and the shadow listing. Returns who settled something. Draws
    from the stream in `words` (`randomness`)."""
    out = np.empty(members.shape[0], dtype=np.int32)
    n = 0
    s = randomness.load(words)
    for x in range(members.shape[0]):
        p = members[x]
        done = False
        for li in range(direct_slot.shape[0]):
            bit = 1 << li
            if not (settle_mask & bit and bits[p, 0] & bit):
                continue
            u, s = randomness.uniform(s)
            if u < pi:
                d = direct_slot[li]
                direct_end[p, 0, d] = -1
                direct_end[p, 1, d] = -1
                done = True
        if done:
            out[n] = p
            n += 1
    randomness.store(words, s)
    return out[:n]


def file_appeals(
    rng: np.random.Generator,
    alpha: float,
    negative: np.ndarray,
    beh: np.ndarray,
    truth: np.ndarray,
    positive: slice = slice(0, 0),
) -> np.ndarray:
    """Indices of today's wrong negative records whose victim appeals (probability alpha).
    The rows `positive` hold positive behaviours' records only and are not searched."""
    cut, end = positive.indices(len(beh))[:2]
    candidates = np.concatenate(
        [
            _wrong_negative(negative, beh[:cut], truth[:cut]),
            end + _wrong_negative(negative, beh[end:], truth[end:]),
        ]
    )
    return candidates[rng.random(candidates.size) < alpha]


@njit(cache=True, nogil=True)
def _wrong_negative(negative: np.ndarray, beh: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Indices of the records that are negative and not correct (counted first: a few
    thousand of a day's million records)."""
    n = 0
    for r in range(beh.shape[0]):
        n += (truth[r] != CORRECT) & (negative[beh[r]] == 1)
    out = np.empty(n, dtype=np.int64)
    n = 0
    for r in range(beh.shape[0]):
        if truth[r] != CORRECT and negative[beh[r]] == 1:
            out[n] = r
            n += 1
    return out
