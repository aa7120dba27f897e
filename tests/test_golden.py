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
        "records": "15ce8a46e96ce325",
        "spells": "1a653e7e3e820090",
        "appeals": "ea08aceafffb92c6",
        "daily": "e2776426dd8fca1a",
        "behaviour_daily": "acb6ce62f9d44a6e",
        "persons": "f5d913b3a1a79b54",
        "children": "74d70dc94b0b4dd5",
        "edges": "92d677e5520ae90f",
    },
    "r1": {
        "records": "820ebb2c32ddc58d",
        "spells": "17fad75f19aeaecd",
        "appeals": "ea7c2562b0d5d38d",
        "daily": "4f426e5b9dc5e89e",
        "behaviour_daily": "bd8bb7a1c6ca2823",
        "persons": "65a2b7ee2e33fdb8",
        "children": "f9ae233b04adf2fd",
        "edges": "07382175447f512b",
    },
    "three-cities": {
        "records": "ca7666ba535f725e",
        "spells": "4d846c7988fe8410",
        "appeals": "5be14e1d61579ad2",
        "daily": "c13ef47988617e33",
        "behaviour_daily": "690005f3d910ffab",
        "persons": "ed09aa114cab1b67",
        "children": "f0ef4a61705a37f2",
        "edges": "c036409ba64ad8fa",
    },
}
SEEDS = {"s1": 1, "r1": 2, "three-cities": 3}


def digest(table: pa.Table) -> str:
    """Column names, types and values in row order, however the rows are split into chunks
    (how many days a batch holds is the recorder's business)."""
    h = hashlib.sha256()
    for name, column in zip(table.column_names, table.columns, strict=True):
        h.update(f"{name}:{column.type}".encode())
        nulls = hashlib.sha256()
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type):
                chunk = chunk.dictionary_decode()
            if pa.types.is_string(chunk.type):
                h.update("".join(f"{v}\0" for v in chunk.to_pylist()).encode())
            else:  # values with nulls as zeros (an object array's bytes would be addresses)
                zero = False if pa.types.is_boolean(chunk.type) else 0
                values = chunk.fill_null(zero).to_numpy(zero_copy_only=False)
                h.update(np.ascontiguousarray(values).tobytes())
                nulls.update(np.asarray(chunk.is_null()).tobytes())
        h.update(nulls.digest())
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
    "records": "14df5a4214568947",
    "spells": "cd5fb8df612027c8",
    "appeals": "3339d95754b676e7",
    "daily": "5ff99a8bd0e9b611",
    "behaviour_daily": "db1c0be70e4f92fa",
    "persons": "9f8683e614f0f88e",
    "children": "88ea61e597d50c94",
    "edges": "7c5b9a0ec0c4a267",
    "companies": "64a62e472555c6c7",
    "company_records": "587420624ae9a297",
    "company_appeals": "f04d1fd13194cebe",
    "company_spells": "02bf183d8817d6ab",
    "company_ratings": "5b0a4d415b56cc4a",
    "company_daily": "2e844f3d56d3cb9b",
}


def test_c1_tables_are_unchanged() -> None:
    sc = xinyong.load_scenario("c1", adults=3000, days=400, seed=4)
    run = xinyong.run(sc)
    assert {t: digest(run.table(t)) for t in C1_DIGESTS} == C1_DIGESTS


P1_DIGESTS = {  # P1, 3,000 adults, 400 days, seed 6: as is, and the networked what-if
    False: {
        "records": "56ddf7def2edf165",
        "spells": "d1dc65156266805c",
        "persons": "2c7f3fb337db07ea",
        "credit_applications": "4ce1295751f2679f",
        "credit_adults": "399a416c1870f2d8",
        "credit_scores": "97b8c19ca348fb3e",
    },
    True: {
        "records": "af1a4cfbc0c1b2e7",
        "spells": "923afb85628bf26d",
        "persons": "f5ece4b83b974248",
        "credit_applications": "2bc87cc92b17fad6",
        "credit_adults": "23fc805bee188e12",
        "credit_scores": "c37814332fc4317b",
    },
}


@pytest.mark.parametrize("networked", [False, True])
def test_p1_tables_are_unchanged(networked: bool) -> None:
    over = {"credit.records_to_private": networked}
    sc = xinyong.load_scenario("p1", adults=3000, days=400, seed=6, overrides=over)
    run = xinyong.run(sc)
    want = P1_DIGESTS[networked]
    assert {t: digest(run.table(t)) for t in want} == want
