"""Credit (docs/credit.md): the private score's formula and rounding, H_book, each lender
policy, the court list feeding the score, shadow decisions, loans ending and re-applying on
one day, defaults and suits as true events; and statistical checks of files, applications
and defaults whose tolerances come from the binomial."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xinyong
from tests.conftest import quiet_scenario
from tests.test_reliability import cli
from tests.test_resume import digests, killed
from xinyong import shard
from xinyong.audit.registry import adult_lines
from xinyong.credit.module import CreditModule
from xinyong.credit.score import h_book, private_score
from xinyong.engine import Simulation
from xinyong.errors import XinyongError
from xinyong.population import NBR_BLOCK
from xinyong.scenario import load_scenario


def quiet_p1(adults: int = 8, days: int = 10, extra: dict | None = None, **credit: Any) -> Any:
    """P1 with nothing random but the credit module's own draws (conftest.quiet_scenario),
    nobody settling with the court."""
    overrides = {"consequences.pi": 0, **(extra or {})}
    overrides |= {f"credit.{k}": v for k, v in credit.items()}
    return quiet_scenario(adults=adults, days=days, overrides=overrides, base="p1")


def credit_of(sim: Simulation) -> CreditModule:
    module = sim.module("credit")
    assert isinstance(module, CreditModule)
    return module


# -- the formula ---------------------------------------------------------------------------


def test_the_private_score_formula_by_hand() -> None:
    # H 0.7 (a file, no ended loan), B 1/3 (civic 1), F 0.6, I 0.8, C 0.5:
    # 0.245 + 0.08333 + 0.12 + 0.12 + 0.025 = 0.59333; 350 + 356 = 706.
    one = np.ones(1)
    assert private_score(0.7 * one, one / 3, 0.6 * one, 0.8, 0.5 * one)[0] == 706
    assert private_score(0 * one, 0 * one, 0 * one, 0.0, 0 * one)[0] == 350
    # Without a file (H 0.2): 0.35 * 0.5 * 600 = 105 points less; listed (H 0): 42 less again.
    assert private_score(0.2 * one, one / 3, 0.6 * one, 0.8, 0.5 * one)[0] == 601
    assert private_score(0 * one, one / 3, 0.6 * one, 0.8, 0.5 * one)[0] == 559
    # Half to even on the float64 value as written: C = 0.25 gives exactly 357.5 -> 358,
    # C = 0.75 exactly 372.5 -> 372.
    for c, exact, rounded in ((0.25, 357.5, 358), (0.75, 372.5, 372)):
        assert 350 + 600 * (0.35 * 0 + 0.25 * 0 + 0.20 * 0 + 0.15 * 0 + 0.05 * c) == exact
        assert private_score(0 * one, 0 * one, 0 * one, 0.0, c * one)[0] == rounded


def test_h_book() -> None:
    pairs = [(0, 0), (3, 1), (0, 1), (1, 2)]
    assert [h_book(r, d) for r, d in pairs] == pytest.approx([7 / 10, 10 / 16, 7 / 13, 8 / 17])


# -- decisions -----------------------------------------------------------------------------


def decide(lender: str, setup: dict[str, Any]) -> dict[str, list]:
    """Day 0's applications of four adults who all apply (loan_rate 1), from a state set by
    hand: file, book, private scores and list bits per world."""
    sc = quiet_p1(adults=4, days=1, lender=lender, loan_rate=1.0)
    sim = Simulation(sc)
    credit = credit_of(sim)
    credit.has_file[:] = setup["file"]
    credit.repaid[:], credit.defaulted[:] = setup["repaid"], setup["defaulted"]
    credit.score[:] = np.array(setup["score"], dtype=np.int16)
    blacklist = 1 << sim.tables.scheme.lists.index("blacklist")  # grants loan_ban in rongcheng
    sim.scheme.state.bits[:] = np.array(setup["banned"], dtype=np.uint8) * blacklist
    sim.step(0)
    table = credit.tables()["credit_applications"].to_pydict()
    assert table["adult"] == [0, 1, 2, 3]
    return table


STATE = {
    # 0: file, clean book; 1: file, H = 7/16 < 0.5; 2: no file, score 610; 3: no file, 590,
    # and banned in the recorded world only (a wrong listing).
    "file": [True, True, False, False],
    "repaid": [0, 0, 0, 0],
    "defaulted": [0, 2, 0, 0],
    "score": [[500, 500], [700, 700], [610, 610], [590, 650]],
    "banned": [[0, 0], [0, 0], [0, 0], [1, 0]],
}


@pytest.mark.parametrize(
    ("lender", "approved", "shadow", "reasons"),
    [
        ("file", [1, 0, 0, 0], [1, 0, 0, 0], [None, "history", "no_file", "loan_ban, no_file"]),
        ("score", [0, 1, 1, 0], [0, 1, 1, 1], ["score", None, None, "loan_ban, score"]),
        (
            "file_or_score",
            [1, 1, 1, 0],
            [1, 1, 1, 1],
            [None, None, None, "loan_ban, no_file, score"],
        ),
    ],
)
def test_each_policy_and_its_shadow_decision(
    lender: str, approved: list, shadow: list, reasons: list
) -> None:
    apps = decide(lender, STATE)
    assert apps["approved"] == [bool(x) for x in approved]
    assert apps["approved_shadow"] == [bool(x) for x in shadow]
    assert apps["reason"] == reasons
    assert apps["thin"] == [False, False, True, True]
    assert apps["h_book"] == pytest.approx([0.7, 7 / 16, 0.7, 0.7])
    # Adult 3 is refused only because of the wrong listing (score 650 in the shadow world).
    assert apps["wrongly_denied"] == [a < s for a, s in zip(approved, shadow, strict=True)]


def test_loans_end_and_the_borrower_reapplies_on_the_same_day() -> None:
    """Everyone applies whenever without a loan; loans of 5 days; everyone defaults and is
    sued (risk >= 1 and default_base 1: min(1, risk) = 1). Day 0: approved on the
    clean file (H 0.7); day 5: default, H 7/13 >= 0.5, approved again; day 10: second
    default, H 7/16 < 0.5: refused for history (the file policy)."""
    n = 6
    sc = quiet_p1(
        adults=n, days=11, extra={"population.trait_min": 1.0}, lender="file", loan_rate=1.0,
        loan_term_days=5, default_base=1.0, sue_share=1.0,
        file_share={"young": 1.0, "established": 1.0},
    )  # fmt: skip
    run = xinyong.run(sc)
    apps = run.sql(
        "SELECT day, count(*) AS n, count(*) FILTER (approved) AS ok, "
        "count(outcome) FILTER (outcome = 'defaulted') AS bad, min(h_book) AS h, "
        "count(*) FILTER (reason = 'history') AS history "
        "FROM credit_applications GROUP BY day ORDER BY day"
    ).to_pydict()
    assert apps["day"] == [0, 5, 10]
    assert apps["n"] == [n, n, n]
    assert apps["ok"] == [n, n, 0]
    assert apps["bad"] == [n, n, 0]
    assert apps["h"] == pytest.approx([0.7, 7 / 13, 7 / 16])
    assert apps["history"] == [0, 0, n]
    # Each default is a loan_default event recorded by the bank (detect 1) and a suit, a
    # court_judgment_default recorded by the court; both on days 5 and 10.
    records = run.sql(
        "SELECT behaviour::VARCHAR AS b, day, count(*) AS n FROM records "
        "GROUP BY ALL ORDER BY b, day"
    ).to_pydict()
    assert records == {
        "b": ["court_judgment_default"] * 2 + ["loan_default"] * 2,
        "day": [5, 10, 5, 10],
        "n": [n, n, n, n],
    }
    adults = run.sql("SELECT sum(repaid) AS r, sum(defaulted) AS d FROM credit_adults")
    assert (adults["r"][0].as_py(), adults["d"][0].as_py()) == (0, 2 * n)
    assert run.summary["credit.default_rate"] == 1.0
    assert run.summary["credit.approval_rate.all"] == pytest.approx(2 / 3)
    # The suits put everyone on the court's list on day 5.
    assert run.summary["list_share.defaulters"] == 1.0
    with run.connect() as con:
        lines = adult_lines(con, run.meta, 0)
    assert lines == [
        "loan approved on day 0 (defaulted)",
        "loan approved on day 5 (defaulted)",
        "loan refused on day 10 (history 0.44 < 0.5)",
    ]


def test_the_court_list_feeds_the_score_in_its_own_world() -> None:
    """A court_judgment_default on day 0 puts adult 0 on defaulters in both worlds (a correct
    record); the computation of day 30 gives H = 0 in both. A record misattributed to adult
    1 in the recorded world only is a scripted case of the same: here the shadow world sees
    nobody listed for adult 1, so its recorded H is 0 and its shadow H is thin_history."""
    sc = quiet_p1(adults=4, days=31, loan_rate=0.0, file_share={"young": 0.0, "established": 0.0})
    sc = sc.with_(script={0: [(0, "court_judgment_default")]})
    sim = Simulation(sc)
    credit = credit_of(sim)
    defaulters = 1 << sim.tables.scheme.lists.index("defaulters")
    before = credit.score.copy()
    for t in range(30):
        sim.step(t)
    sim.scheme.state.bits[1, 0] |= defaulters  # a wrong listing, recorded world only
    sim.step(30)
    after = credit.score
    # No file (H 0.2), no neighbours (C 0.5 throughout): listing costs 0.35 * 0.2 * 600 = 42.
    assert (before[:, 0] == before[:, 1]).all()
    assert after[0].tolist() == [before[0, 0] - 42] * 2
    assert after[1].tolist() == [before[1, 0] - 42, before[1, 1]]
    assert after[2:].tolist() == before[2:].tolist()
    assert credit.score_listed.tolist() == [True, True, False, False]
    # Switched off, the list does not reach the score.
    sim = Simulation(sc.with_(**{"credit.court_list_to_private": False}))
    for t in range(31):
        sim.step(t)
    assert credit_of(sim).score.tolist() == before.tolist()


def test_records_lower_the_behaviour_factor_in_the_networked_what_if() -> None:
    """records_to_private, records_scale 5: two negative records of adult 0 in the window
    multiply B by 0.6; civic 1 gives B = 1/3, so the score drops by 600 * 0.25 * 0.4 / 3 =
    20 points in both worlds (correct records)."""
    overrides = {"records_to_private": True, "loan_rate": 0.0}
    sc = quiet_p1(adults=2, days=31, **overrides)
    sc = sc.with_(script={3: [(0, "jaywalking")], 20: [(0, "unleashed_dog")]})
    sim = Simulation(sc)
    credit = credit_of(sim)
    civic = sim.pop.civic
    before = credit.score.copy()
    for t in range(31):
        sim.step(t)
    b = min(1.0, civic[0] / 3)
    one = np.ones(1)
    expect = private_score(credit.score_h[:1], b * 0.6 * one, credit.capacity[:1], 0.8, 0.5 * one)[
        0
    ]
    assert credit.score[0].tolist() == [expect, expect]
    assert credit.score[1].tolist() == before[1].tolist()


def test_bad_credit_parameters_are_named() -> None:
    for key, value, words in (
        ("credit.score_min", 300, "greater than or equal to 350"),
        ("credit.file_share.young", 1.5, "less than or equal to 1"),
        ("credit.lender", "friends", "file"),
    ):
        with pytest.raises(XinyongError) as err:
            load_scenario("p1", overrides={key: value})
        assert err.value.field is not None and err.value.field.startswith(key), err.value
        assert words in str(err.value)
    with pytest.raises(XinyongError, match="loan_default"):
        load_scenario("r1", overrides={"credit": {}})


# -- statistics ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def p1_run() -> Any:
    return xinyong.run(load_scenario("p1", adults=20_000, days=400, seed=3))


def within(observed: float, expected: float, variance: float, sigmas: float = 5.0) -> bool:
    return abs(observed - expected) <= sigmas * np.sqrt(variance)


def test_cohorts_and_files_on_day_0_follow_their_shares(p1_run: Any) -> None:
    rows = p1_run.sql(
        "SELECT cohort::VARCHAR AS c, count(*) AS n, count(*) FILTER (file_day0) AS f "
        "FROM credit_adults GROUP BY ALL"
    ).to_pydict()
    got = {c: (n, f) for c, n, f in zip(rows["c"], rows["n"], rows["f"], strict=True)}
    n = 20_000
    young = got["young"][0]
    assert within(young, 0.2 * n, n * 0.2 * 0.8)
    for c, share in (("young", 0.10), ("established", 0.40)):
        k, f = got[c]
        assert within(f, share * k, k * share * (1 - share))


def test_applications_and_defaults_follow_their_rates(p1_run: Any) -> None:
    """Applications on day t ~ Binomial(adults without an active loan, 1/365); defaults of
    the loans ended ~ the sum of Bernoulli(min(1, 0.05 risk)) over their borrowers."""
    apps = p1_run.sql("SELECT day, approved FROM credit_applications").to_pydict()
    day = np.array(apps["day"])
    approved = np.array(apps["approved"])
    term, p = 180, 1 / 365
    starts = np.bincount(day[approved], minlength=400)
    active = np.array([starts[max(0, t - term + 1) : t].sum() for t in range(400)])
    eligible = 20_000 - active
    assert within(len(day), p * eligible.sum(), (p * (1 - p) * eligible).sum())
    ended = p1_run.sql(
        "SELECT a.outcome = 'defaulted' AS bad, least(1, 0.05 * r.risk) AS q "
        "FROM credit_applications a JOIN persons r ON r.person = a.adult "
        "WHERE a.outcome IS NOT NULL"
    ).to_pydict()
    q = np.array(ended["q"])
    assert len(q) > 1000
    assert within(sum(ended["bad"]), q.sum(), (q * (1 - q)).sum())
    assert p1_run.summary["credit.default_rate"] == pytest.approx(np.mean(ended["bad"]))


def test_summary_metrics_agree_with_the_tables(p1_run: Any) -> None:
    s = p1_run.summary
    (score,) = p1_run.sql("SELECT avg(private_score) AS m FROM credit_adults")["m"].to_pylist()
    assert s["credit.private_score_mean"] == pytest.approx(score)
    bands = [s[f"credit.private_band_share.{b}"] for b in
             ("poor", "medium", "good", "very_good", "excellent")]  # fmt: skip
    assert sum(bands) == pytest.approx(1.0)
    last = p1_run.sql(
        "SELECT band, adults FROM credit_scores WHERE world = 'recorded' AND day = 390"
    ).to_pydict()
    assert [a / 20_000 for a in last["adults"]] == pytest.approx(bands)
    n_apps = p1_run.table("credit_applications").num_rows
    assert s["credit.applications_per_adult_year"] == pytest.approx(n_apps / 20_000 / (400 / 365))
    counts = p1_run.sql(
        "SELECT count(*) FILTER (wrongly_denied) AS w, count(*) FILTER (NOT approved) AS d "
        "FROM credit_applications"
    )
    wrong, denied = counts["w"][0].as_py(), counts["d"][0].as_py()
    assert s["credit.wrongly_denied_per_1000"] == wrong / 20_000 * 1000
    assert s["credit.wrongly_denied_share"] == wrong / denied
    assert s["credit.approval_rate.young"] < s["credit.approval_rate.established"]


def test_the_networked_what_if_denies_wrongly_and_never_scores_above_the_shadow() -> None:
    """With the records shared, B counts all negative records against an adult in the
    recorded world and the correct ones in the shadow world; the recorded defaulters are
    the shadow's and more; C averages scores that obey the same order. So no recorded
    private score exceeds its shadow, and wrong records now refuse loans."""
    what_if = xinyong.run(
        load_scenario("p1", adults=20_000, days=400, seed=3,
                      overrides={"credit.records_to_private": True})
    )  # fmt: skip
    above = what_if.sql(
        "SELECT count(*) FILTER (private_score > private_score_shadow) AS n FROM credit_adults"
    )["n"][0].as_py()
    assert above == 0
    s = what_if.summary
    assert s["credit.wrongly_denied_per_1000"] > 0
    wrong = what_if.sql(
        "SELECT count(*) AS n FROM credit_applications WHERE wrongly_denied "
        "AND score < 600 AND score_shadow >= 600"
    )["n"][0].as_py()
    assert wrong / 20_000 * 1000 <= s["credit.wrongly_denied_per_1000"]
    assert wrong > 0
    (adult, score) = (
        what_if.sql(
            "SELECT adult, score FROM credit_applications WHERE wrongly_denied "
            "AND reason = 'no_file, score' ORDER BY day LIMIT 1"
        )
        .to_pylist()[0]
        .values()
    )
    with what_if.connect() as con:
        lines = adult_lines(con, what_if.meta, adult)
    assert any(
        f"(no credit file; score {score} < 600" in line and line.endswith("(wrongly denied)")
        for line in lines
    ), lines


@pytest.mark.parametrize("what_if", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_a_killed_p1_run_resumes_to_the_uninterrupted_tables(tmp_path: Path, what_if: bool) -> None:
    """kill -9 after the second checkpoint; the resumed run's tables (the credit tables
    included) are those of a run never interrupted, in P1 and in the networked what-if."""
    out = tmp_path / "run"
    size = ("--adults", "3000", "--days", "300", "--seed", "5")
    switch = ("--set", f"credit.records_to_private={str(what_if).lower()}")
    killed(out, "p1", *size, *switch, "--checkpoint-days", "10", sig=signal.SIGKILL)
    res = cli("run", "--resume", out, "--quiet")
    assert res.returncode == 0, res.stderr
    sc = load_scenario(
        "p1", adults=3000, days=300, seed=5,
        overrides={"credit.records_to_private": what_if},
    )  # fmt: skip
    ref = xinyong.run(sc, tmp_path / "ref", checkpoint_days=0)
    ours = digests(out)
    assert {"credit_applications", "credit_adults", "credit_scores"} <= set(ours)
    assert ours == digests(ref.path)


def test_cities_and_shards_carry_credit() -> None:
    """Each city engine lends to and scores its own adults; the tables are the same however
    the cities are shared out."""
    sc = load_scenario(
        "three-cities", adults=3000, days=120, seed=2,
        overrides={"credit": {"loan_rate": 0.01}, "behaviours.loan_default": LOAN_DEFAULT},
    )  # fmt: skip
    runs = [shard.run_in_process(sc, None, bins=bins).tables for bins in (1, 2)]
    for name in ("credit_applications", "credit_adults", "credit_scores"):
        assert runs[0][name].equals(runs[1][name]), name
    assert runs[0]["credit_adults"]["adult"].to_pylist() == list(range(3000))
    assert runs[0]["credit_applications"].num_rows > 1000


LOAN_DEFAULT = {
    "sign": "negative", "context": "finance", "gravity": 3, "channel": "bank", "base": 0,
}  # fmt: skip


def test_connections_read_the_neighbours_in_other_cities() -> None:
    """Three cities on two shards, stepped as run_in_process steps them, to the day of the
    first computation after day 0 (score_period 5): each adult's new recorded-world score is
    the formula with C the mean over all its neighbours (ghost rows read through the global
    ids of the other cities' adults) of (previous score - 350) / 600; the boundary adults'
    C differs from a same-city mean, so the exchange is what the test sees."""
    sc = load_scenario(
        "three-cities", adults=3000, days=6, seed=3,
        overrides={"credit": {"score_period": 5}, "behaviours.loan_default": LOAN_DEFAULT},
    )  # fmt: skip
    layout = shard.Layout.of(sc)
    shards = [shard.Shard(sc, c, None, 1 << 16) for c in shard.pack_bins(layout.sizes, 2)]
    engines = [e for s in shards for e in s.engines]
    start = shard.exchange([s.boundary(0) for s in shards])
    for t in range(5):
        start = shard.exchange([s.step(t, start) for s in shards])
    before = np.concatenate([e.module("credit").score[:, 0] for e in engines]).astype(float)
    for s in shards:
        s.step(5, start)
    unit = (before - 350) / 600
    differs = 0
    for e in engines:
        credit, pop, first = e.module("credit"), e.pop, e.part.first_adult
        n = pop.adults
        rows = np.concatenate([np.arange(n) + first, pop.ghosts])  # graph row -> global id
        offset = np.concatenate([[0], np.cumsum(pop.nbr_degree, dtype=np.int64)])
        assert np.array_equal(offset[:-1:NBR_BLOCK], pop.nbr_block[: len(offset[:-1:NBR_BLOCK])])
        c, c_same = np.full(n, 0.5), np.full(n, 0.5)
        for a in range(n):
            nbrs = rows[pop.nbr[offset[a] : offset[a + 1]]]
            if len(nbrs):
                c[a] = unit[nbrs].mean()
                same = nbrs[(nbrs >= first) & (nbrs < first + n)]
                c_same[a] = unit[same].mean() if len(same) else 0.5
        b = credit.behaviour
        got = credit.score[:, 0]
        want = private_score(credit.score_h, b, credit.capacity, sc.credit.identity, c)
        assert np.array_equal(got, want)
        differs += int((c != c_same).sum())
        # C's sums now count this city's new scores and the other cities' as passed on.
        now = np.concatenate([en.module("credit").score[:, 0] for en in engines]).astype(int)
        seen = np.where((rows >= first) & (rows < first + n), now[rows], before[rows]) - 350
        want_sums = [seen[pop.nbr[offset[a] : offset[a + 1]]].sum() for a in range(n)]
        assert credit.sums[0].tolist() == want_sums
    assert differs > 0


def test_the_memory_estimate_counts_the_state_and_the_applications() -> None:
    from xinyong import sizing

    p1 = load_scenario("p1", adults=10_000, days=730)
    r1 = load_scenario("r1", adults=10_000, days=730)
    extra = (sizing.estimate(p1) - sizing.estimate(r1)) / 10_000
    # 70 bytes of state and 2 applications per adult (1/365 a day for 730 days), 45 each.
    assert extra == pytest.approx(70 + 2 * 45)


SPEC_METRICS = [
    *(f"credit.file_share.{c}" for c in ("all", "young", "established")),
    "credit.private_score_mean",
    *(
        f"credit.private_band_share.{b}"
        for b in ("poor", "medium", "good", "very_good", "excellent")
    ),
    "credit.applications_per_adult_year",
    *(f"credit.approval_rate.{c}" for c in ("all", "young", "established")),
    "credit.approval_rate_thin",
    *(f"credit.approval_rate_by_group.{g}" for g in ("minority", "majority")),
    "credit.default_rate",
    "credit.worthy_denied_share",
    *(f"credit.worthy_denied_share_by_cohort.{c}" for c in ("young", "established")),
    "credit.wrongly_denied_per_1000",
    "credit.wrongly_denied_share",
    "credit.defaulters_poor_share",
]


def test_the_credit_summary_keys_are_the_models_and_each_has_a_meaning(p1_run: Any) -> None:
    from xinyong.audit.hooks import module_audits
    from xinyong.audit.registry import summary_meaning

    keys = [k for k in p1_run.summary if k.startswith("credit.")]
    assert sorted(keys) == sorted(SPEC_METRICS)
    assert summary_meaning("credit.approval_rate.young", module_audits()) == (
        "approved / loan applications (young adults), whole run"
    )
    for key in keys:
        assert not summary_meaning(key, module_audits()).startswith("summary metric"), key


def test_a_p1_run_is_audited_with_its_credit_summary(tmp_path: Path) -> None:
    """The audit of a run with credit: its summary keys (with their meanings) and the report,
    though the module adds no report section of its own."""
    out = tmp_path / "run"
    xinyong.run(load_scenario("p1", adults=2000, days=200, seed=1), out=out)
    result = xinyong.audit(out, baseline=False, report=True)
    assert result.doc["run"]["credit.applications_per_adult_year"] > 0
    assert (out / "report.html").is_file()
