"""Every table of small runs of S1, R1, three-cities, C1 and P1, fingerprinted: a speed-up or a
refactoring must not change results.

If a change is meant to alter what a run draws or computes, update the digests below and say
why in the commit (and in docs/model-notes.md when the meaning changes).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pytest

import xinyong
from xinyong import threads

DIGESTS = {
    "s1": {
        "records": "32b84bb10242075e",
        "spells": "174b24e9d9c69f5d",
        "appeals": "c4608e9d1f4eb4c1",
        "daily": "bdf6a4163dc51081",
        "behaviour_daily": "2733d7d99939f0b8",
        "persons": "96bb553529a66e84",
        "children": "cf381d06f7ada113",
        "edges": "79d8dbed60605988",
    },
    "r1": {
        "records": "a578deb0422b784f",
        "spells": "df285c65fa27b829",
        "appeals": "8130ce5654d3e943",
        "daily": "908951d29071c40b",
        "behaviour_daily": "7c031ef80c6e32dd",
        "persons": "9c3cccc072cae221",
        "children": "c1d5e6c4b30264c1",
        "edges": "8acd2ce87ac20508",
    },
    "three-cities": {
        "records": "872cb75a87a0e84f",
        "spells": "aca4b158d86e3c38",
        "appeals": "5891b07ef7623af3",
        "daily": "32d026b1b6bf952e",
        "behaviour_daily": "85483915ebbcf4c0",
        "persons": "c7c3944fbf79ca8a",
        "children": "8e134b701fa266bb",
        "edges": "c871ae597bda71b9",
    },
}
SEEDS = {"s1": 1, "r1": 2, "three-cities": 3}


def digest(table: pa.Table) -> str:
    """Column names, types and values in row order."""
    h = hashlib.sha256()
    for name, column in zip(table.column_names, table.columns, strict=True):
        h.update(f"{name}:{column.type}".encode())
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type):
                chunk = chunk.dictionary_decode()
            if pa.types.is_string(chunk.type):
                h.update("\0".join(str(v) for v in chunk.to_pylist()).encode())
            else:  # values with nulls as zeros (an object array's bytes would be addresses)
                zero = False if pa.types.is_boolean(chunk.type) else 0
                values = chunk.fill_null(zero).to_numpy(zero_copy_only=False)
                h.update(np.ascontiguousarray(values).tobytes())
                h.update(np.asarray(chunk.is_null()).tobytes())
    return h.hexdigest()[:16]


@pytest.fixture(
    scope="module",
    params=[("s1", "one thread"), ("s1", "split"), ("r1", "split"), ("three-cities", "split")],
    ids=lambda p: "-".join(p),
)
def golden_run(request: pytest.FixtureRequest) -> tuple[str, xinyong.Run]:
    """Each scenario as is or with every step that can be split over two threads split."""
    name, how = request.param
    with pytest.MonkeyPatch.context() as mp:
        if how == "split":
            mp.setattr(threads, "MIN_SPLIT", 1)
        sc = xinyong.load_scenario(name, adults=3000, days=200, seed=SEEDS[name])
        if name == "three-cities":  # its adults as before it had companies
            sc = sc.with_(companies=None, company_packs={})
        return name, xinyong.run(sc)


@pytest.mark.parametrize("table", sorted(DIGESTS["s1"]))
def test_tables_are_unchanged(golden_run: tuple[str, xinyong.Run], table: str) -> None:
    name, run = golden_run
    assert digest(run.table(table)) == DIGESTS[name][table]


C1_DIGESTS = {  # C1, 3,000 adults (150 companies), 400 days, seed 4: one rating
    "records": "584d966abdab7743",
    "spells": "1e0aa950cafcda49",
    "appeals": "9fc998f39bba3f97",
    "daily": "d47ce1993147f7dc",
    "behaviour_daily": "258e1c7a567d2859",
    "persons": "951ea4e9fd98206a",
    "children": "5af68999dc1023e7",
    "edges": "e425a9447556fd30",
    "companies": "15582e66c37b4dbc",
    "company_records": "1090d3ef514c0c86",
    "company_appeals": "fc4014c9f9368493",
    "company_spells": "f0695a77f4c035cf",
    "company_ratings": "ece7d813113caf12",
    "company_daily": "deeef0067852b478",
}


def test_c1_tables_are_unchanged() -> None:
    sc = xinyong.load_scenario("c1", adults=3000, days=400, seed=4)
    run = xinyong.run(sc)
    assert {t: digest(run.table(t)) for t in C1_DIGESTS} == C1_DIGESTS


P1_DIGESTS = {  # P1, 3,000 adults, 400 days, seed 6: as is, and the networked what-if
    False: {
        "records": "abdc9bfbc71cdf8e",
        "spells": "0b8c6647b37ba605",
        "persons": "f9d0d1e666cf644a",
        "credit_applications": "c08d8df9cfa72487",
        "credit_adults": "db73af157a47c3ba",
        "credit_scores": "4c65d092fdda3b83",
    },
    True: {
        "records": "910f767006eb1a11",
        "spells": "d59485a25d8e5531",
        "persons": "2117b8d5d7bf09dc",
        "credit_applications": "2ef69d12b4b0ab08",
        "credit_adults": "2463c3560cc25ccf",
        "credit_scores": "9cccd207a76ec694",
    },
}


@pytest.mark.parametrize("networked", [False, True])
def test_p1_tables_are_unchanged(networked: bool) -> None:
    over = {"credit.records_to_private": networked}
    sc = xinyong.load_scenario("p1", adults=3000, days=400, seed=6, overrides=over)
    run = xinyong.run(sc)
    want = P1_DIGESTS[networked]
    assert {t: digest(run.table(t)) for t in want} == want
