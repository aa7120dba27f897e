"""The credit audit (financial inclusion): shares counted by hand on constructed tables and
from a small run's own tables, the route of each wrongly refused application, the score
bands, explain's refusal lines, the report's findings against the rows they cite, the
networked what-if against P1, and the rescore's result whatever the number of threads."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.compute as pc
import pytest

import xinyong
from xinyong.audit import stats
from xinyong.audit.format import count
from xinyong.audit.registry import ACROSS_SEEDS, MIN_COUNT, WITHIN_RUN
from xinyong.credit import audit as ca
from xinyong.credit.explain import explain_lines
from xinyong.credit.routes import computation_day_sql, on_defaulters_sql

BEHAVIOURS = ["jaywalking", "court_judgment_default", "volunteering"]
NEGATIVE = [True, True, False]

# day, adult, cohort, group, thin, creditworthy, approved, approved_shadow, loan_ban,
# loan_ban_shadow, history_zero, reason, score, score_shadow, h_book, outcome
APPLICATIONS = [
    (10, 0, "young", "minority", True, True, False, False, False, False, False,
     "no_file, score", 560, 560, 0.7, None),
    (40, 1, "young", "majority", False, True, True, True, False, False, False,
     None, 640, 640, 0.7, "repaid"),
    (100, 2, "established", "majority", False, True, False, True, True, False, False,
     "loan_ban", 610, 610, 0.7, None),
    (400, 3, "established", "minority", True, True, False, True, False, False, True,
     "no_file, score", 571, 655, 0.7, None),
    (400, 4, "established", "majority", True, False, False, True, False, False, True,
     "no_file, score", 575, 605, 0.7, None),
    (200, 5, "young", "majority", False, True, True, True, False, False, False,
     None, 620, 620, 0.7, None),
    (250, 6, "established", "majority", False, False, False, False, False, False, False,
     "history, score", 590, 590, 0.4375, None),
]  # fmt: skip
# The networked what-if adds two wrongly refused applications of day 400 (computation 390).
WHAT_IF = [
    (400, 7, "young", "majority", True, True, False, True, False, False, False,
     "no_file, score", 590, 601, 0.7, None),
    (400, 8, "young", "majority", True, True, False, True, False, False, False,
     "no_file, score", 596, 600, 0.7, None),
]  # fmt: skip
SPELLS = [
    (2, "blacklist", "recorded", 50, None),
    (3, "defaulters", "recorded", 300, None),
    (4, "defaulters", "recorded", 300, None),
    (4, "defaulters", "shadow", 350, None),  # on in the shadow world too at day 390
]
# record_id, day, person, behaviour, truth, actor
RECORDS = [
    (17, 300, 3, "court_judgment_default", "misattributed", 9),
    (18, 300, 4, "court_judgment_default", "correct", 4),
    (20, 100, 7, "jaywalking", "misattributed", 9),  # counts in 26..390
    (21, 200, 7, "jaywalking", "correct", 7),
    (22, 300, 7, "jaywalking", "misattributed", 9),  # removed on appeal on day 320
    (23, 20, 7, "jaywalking", "misattributed", 9),  # before the year of day 390
    (24, 380, 8, "volunteering", "misattributed", 9),  # positive: not counted
]
APPEALS = [(22, 320, True)]


def constructed(records_to_private: bool) -> tuple[duckdb.DuckDBPyConnection, dict]:
    """The tables the credit audit reads, by hand: 7 applications (9 in the what-if) of
    adults 0..8, eight adults' private scores at T."""
    con = duckdb.connect()
    apps = APPLICATIONS + (WHAT_IF if records_to_private else [])
    con.execute(
        "CREATE TABLE credit_applications (day INT, adult INT, cohort VARCHAR, "
        '"group" VARCHAR, thin BOOL, creditworthy BOOL, approved BOOL, approved_shadow BOOL, '
        "loan_ban BOOL, loan_ban_shadow BOOL, history_zero BOOL, reason VARCHAR, score SMALLINT, "
        "score_shadow SMALLINT, h_book DOUBLE, outcome VARCHAR)"
    )
    con.executemany(f"INSERT INTO credit_applications VALUES ({', '.join('?' * 16)})", apps)
    con.execute(
        "CREATE TABLE credit_applications2 AS SELECT *, NOT approved AND approved_shadow AS "
        "wrongly_denied FROM credit_applications; DROP TABLE credit_applications; "
        "ALTER TABLE credit_applications2 RENAME TO credit_applications"
    )
    con.execute(
        "CREATE TABLE credit_adults AS SELECT * FROM (VALUES (549, 560), (550, 550), "
        "(599, 599), (600, 600), (649, 649), (650, 650), (699, 699), (700, 700)) "
        "t(private_score, private_score_shadow)"
    )
    con.execute(
        'CREATE TABLE spells (person INT, list VARCHAR, world VARCHAR, start INT, "end" INT)'
    )
    con.executemany("INSERT INTO spells VALUES (?, ?, ?, ?, ?)", SPELLS)
    con.execute(
        "CREATE TABLE records (record_id BIGINT, day INT, person INT, behaviour VARCHAR, "
        "truth VARCHAR, actor INT)"
    )
    con.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", RECORDS)
    con.execute("CREATE TABLE appeals (record_id BIGINT, decision_day INT, upheld BOOL)")
    con.executemany("INSERT INTO appeals VALUES (?, ?, ?)", APPEALS)
    meta = {
        "behaviours": BEHAVIOURS,
        "negative": NEGATIVE,
        "consequences": {"blacklist": [{"name": "loan_ban", "target": "person"}]},
        "credit": {
            "lender": "file_or_score", "score_min": 600, "history_min": 0.5,
            "court_list_to_private": True, "records_to_private": records_to_private,
            "score_period": 30, "thin_history": 0.2,
            "defaulters_entry": ["court_judgment_default"],
        },
    }  # fmt: skip
    return con, meta


def audited(records_to_private: bool) -> dict:
    con, meta = constructed(records_to_private)
    out: dict = {"metrics": {}}
    ca.credit_audit(con, out, meta, 730)
    return out["metrics"]


def counts(m: dict, name: str) -> tuple:
    return m[name]["count"], m[name]["of"]


def test_shares_by_cohort_group_and_file_counted_by_hand() -> None:
    m = audited(False)
    assert counts(m, "credit.approved_share") == (2, 7)
    # Wilson 95% for 2 of 7: centre (2/7 + z²/14) / (1 + z²/7) = 0.3616, half-width 0.2794.
    assert (m["credit.approved_share"]["low"], m["credit.approved_share"]["high"]) == (
        pytest.approx(0.0822, abs=5e-4),
        pytest.approx(0.6411, abs=5e-4),
    )
    assert m["credit.approved_share"]["interval"] == WITHIN_RUN
    assert counts(m, "credit.approved_share_by_cohort.young") == (2, 3)
    assert counts(m, "credit.approved_share_by_cohort.established") == (0, 4)
    assert counts(m, "credit.approved_share_by_group.minority") == (0, 2)
    assert counts(m, "credit.approved_share_by_group.majority") == (2, 5)
    assert counts(m, "credit.approved_share_by_file.thin") == (0, 3)
    assert counts(m, "credit.approved_share_by_file.with_file") == (2, 4)
    assert counts(m, "credit.worthy_refused_share") == (3, 5)
    assert counts(m, "credit.worthy_refused_share_by_cohort.young") == (1, 3)
    assert counts(m, "credit.worthy_refused_share_by_cohort.established") == (2, 2)
    assert counts(m, "credit.worthy_refused_share_by_group.minority") == (2, 2)
    assert counts(m, "credit.worthy_refused_share_by_file.with_file") == (1, 3)
    assert m["credit.approved_share_by_group.minority"]["meaning"] == (
        "loan applications of minority adults approved"
    )


def test_wrongly_refused_by_route_and_the_share_through_data_sharing() -> None:
    m = audited(False)
    # Refused: 5; wrongly (the shadow world approves): adults 2, 3 and 4.
    assert counts(m, "credit.wrongly_refused_share") == (3, 5)
    assert m["credit.wrongly_refused_per_1000"]["value"] == pytest.approx(1000 * 3 / 8)
    # Adult 2 holds loan_ban, the shadow world does not; adult 3 is on the court's list only
    # in the recorded world; adult 4 is on it in both worlds at day 390: not the list's doing.
    route = {r: counts(m, f"credit.wrongly_refused_through.{r}") for r in ca.ROUTES}
    assert route == {
        "loan_ban": (1, 3), "court_list": (1, 3), "shared_records": (0, 3),
        "connections": (1, 3),
    }  # fmt: skip
    assert counts(m, "credit.wrongly_refused_through_sharing") == (1, 3)


def test_the_networked_what_if_counts_the_years_records_as_the_score_did() -> None:
    m = audited(True)
    # Adult 7 at day 390: recorded 2 negative records (20, 21; 22 removed on day 320, 23
    # before day 26), shadow 1 (21): through the shared records. Adult 8's only record is a
    # positive one: through connections.
    route = {r: counts(m, f"credit.wrongly_refused_through.{r}")[0] for r in ca.ROUTES}
    assert route == {"loan_ban": 1, "court_list": 1, "shared_records": 1, "connections": 2}
    assert counts(m, "credit.wrongly_refused_through_sharing") == (2, 5)


def test_score_bands_in_both_worlds() -> None:
    m = audited(False)
    recorded = [counts(m, f"credit.score_band_share.recorded.{b}")[0] for b in ca.BANDS]
    shadow = [counts(m, f"credit.score_band_share.shadow.{b}")[0] for b in ca.BANDS]
    assert recorded == [1, 2, 2, 2, 1]  # 549 | 550 599 | 600 649 | 650 699 | 700
    assert shadow == [0, 3, 2, 2, 1]  # 560 is medium
    assert m["credit.score_band_share.recorded.poor"]["of"] == 8


def test_explain_says_why_each_application_was_refused_and_which_record() -> None:
    con, meta = constructed(False)
    assert explain_lines(con, meta, 3) == [
        "loan refused on day 400 (no credit file; score 571 < 600: history 0 while on the "
        "defaulter list since day 300, entered on a misattributed record 17 "
        "(court_judgment_default of adult 9)); the shadow world (score 655) would have "
        "approved it: refused through the court's list (wrongly denied)"
    ]
    assert explain_lines(con, meta, 4)[0].endswith(
        "entered on their own record 18 (court_judgment_default)); the shadow world (score "
        "605) would have approved it: refused through the neighbours' scores (wrongly denied)"
    )
    assert explain_lines(con, meta, 2) == [
        "loan refused on day 100 (holds loan_ban (on the blacklist since day 50)); the shadow "
        "world (score 610) would have approved it: refused through the blacklist's loan ban "
        "(wrongly denied)"
    ]
    assert explain_lines(con, meta, 0) == [
        "loan refused on day 10 (no credit file; score 560 < 600: history 0.20 without a file)"
    ]
    assert explain_lines(con, meta, 6) == [
        "loan refused on day 250 (history 0.44 < 0.5; score 590 < 600: history 0.44 from the "
        "lender's book)"
    ]
    assert explain_lines(con, meta, 1) == ["loan approved on day 40 (repaid)"]
    assert explain_lines(con, meta, 5) == ["loan approved on day 200 (still running at the end)"]
    assert explain_lines(con, meta, 77) == []


@pytest.fixture(scope="module")
def p1(tmp_path_factory) -> tuple[Path, dict]:
    """A small P1 run with wrong court records, audited with its report."""
    path = tmp_path_factory.mktemp("p1") / "run"
    sc = xinyong.load_scenario(
        "p1", adults=3000, days=365, seed=4, overrides={"channels.court.misattribute": 0.3}
    )
    xinyong.run(sc, path)
    return path, xinyong.audit(path, baseline=False, report=True).doc


def test_a_runs_shares_are_its_tables_counted_again(p1) -> None:
    path, doc = p1
    m = doc["metrics"]
    run = xinyong.Run.open(path)
    apps = run.table("credit_applications")
    approved = apps["approved"].to_numpy(zero_copy_only=False)
    for by, column in (("cohort", "cohort"), ("group", "group")):
        values = np.asarray(apps[column].to_pylist())
        for which in ca.BY[by]:
            mine = values == which
            assert counts(m, f"credit.approved_share_by_{by}.{which}") == (
                int((approved & mine).sum()),
                int(mine.sum()),
            )
    thin = apps["thin"].to_numpy(zero_copy_only=False)
    assert counts(m, "credit.approved_share_by_file.thin") == (
        int((approved & thin).sum()),
        int(thin.sum()),
    )
    adults = run.table("credit_adults")
    score = adults["private_score"].to_numpy()
    assert counts(m, "credit.score_band_share.recorded.very_good") == (
        int(((score >= 650) & (score < 700)).sum()),
        len(score),
    )
    # The summary's rate and the audit's row are the same count.
    assert doc["run"]["credit.approval_rate.young"] == pytest.approx(
        m["credit.approved_share_by_cohort.young"]["value"]
    )
    wrong = int(pc.sum(apps["wrongly_denied"]).as_py() or 0)
    assert m["credit.wrongly_refused_share"]["count"] == wrong
    assert sum(counts(m, f"credit.wrongly_refused_through.{r}")[0] for r in ca.ROUTES) == wrong


def test_history_zero_is_the_court_list_at_the_computation_read(p1) -> None:
    """The route's reading of the spells: on the recorded defaulters list after step 9 of
    the computation's day is exactly what zeroed the recorded history."""
    from xinyong.store import RunDir

    con = RunDir(p1[0]).connect()
    mismatched = con.sql(
        f"""SELECT count(*) FROM (SELECT *, {computation_day_sql(30)} AS c
            FROM credit_applications) a
            WHERE a.history_zero <> {on_defaulters_sql("recorded")}"""
    ).fetchall()[0][0]
    listed = con.sql("SELECT count(*) FROM credit_applications WHERE history_zero").fetchall()
    assert mismatched == 0 and listed[0][0] > 0


def test_findings_cite_the_rows_and_keep_small_counts_as_counts(p1) -> None:
    path, doc = p1
    m = doc["metrics"]
    found = ca.credit_findings(doc)
    every = m["credit.approved_share"]
    assert found[0].startswith(
        f"{count(every['count'])} of {count(every['of'])} loan applications were approved: "
    )
    young = m["credit.approved_share_by_cohort.young"]
    assert f"young {ca._share(young)}" in found[0]
    wrong = m["credit.wrongly_refused_share"]["count"]
    if wrong:
        assert any(s.startswith(f"{count(wrong)} refused application") for s in found)
    # Under MIN_COUNT a share is its counts alone.
    small = {"value": 0.25, "low": 0.05, "high": 0.7, "count": MIN_COUNT - 1, "of": 36}
    assert ca._share(small) == f"{MIN_COUNT - 1} of 36"
    page = (path / "report.html").read_text()
    assert 'id="credit"' in page and "Financial inclusion" in page
    assert found[0].replace(",", "&#44;") in page or found[0] in page


def test_a_replicate_set_gives_means_per_run_with_across_seed_intervals(tmp_path) -> None:
    sc = xinyong.load_scenario("p1", adults=1500, days=200, seed=7)
    xinyong.run_replicates(sc, tmp_path / "set", 2, workers=1)
    doc = xinyong.audit(tmp_path / "set", baseline=False, report=False).doc
    seeds = [
        xinyong.audit(tmp_path / "set" / "replicates" / f"seed-{s}", baseline=False,
                      report=False).doc
        for s in (7, 8)
    ]  # fmt: skip
    row = doc["metrics"]["credit.approved_share_by_cohort.established"]
    assert row["interval"] == ACROSS_SEEDS
    per_seed = [s["metrics"]["credit.approved_share_by_cohort.established"] for s in seeds]
    assert row["count"] == pytest.approx(np.mean([r["count"] for r in per_seed]))
    assert row["count_total"] == sum(r["count"] for r in per_seed)
    mean, low, high = stats.mean_interval([r["value"] for r in per_seed])
    assert row["value"] == pytest.approx(mean)
    assert row["low"] <= low and row["high"] >= high  # the wider of t and pooled Wilson
    every = doc["metrics"]["credit.approved_share"]
    assert ca.credit_findings(doc)[0].startswith(
        f"{count(every['count'])} of {count(every['of'])} loan applications were approved per "
        "run over 2 seeds: "
    )
    assert every["count"] == pytest.approx(np.mean([s["metrics"]["credit.approved_share"]["count"]
                                                    for s in seeds]))  # fmt: skip


def test_the_networked_what_if_against_p1(tmp_path) -> None:
    """The same world and seed with the social-credit records shared with the private score:
    scores fall, fewer loans are approved, more adults are poor, and applications are wrongly
    refused through the shared records, which P1 cannot do. Both sides with cameras that
    misattribute one record in ten, so that a small run has wrong records to share."""
    docs = {}
    cameras = {"channels.camera.misattribute": 0.1}
    for name, over in (
        ("p1", cameras),
        ("networked", {**cameras, "credit.records_to_private": True}),
    ):
        sc = xinyong.load_scenario("p1", adults=3000, days=365, seed=3, overrides=over)
        xinyong.run(sc, tmp_path / name)
        docs[name] = xinyong.audit(tmp_path / name, baseline=False, report=False).doc
    comparison = xinyong.compare(tmp_path / "p1", tmp_path / "networked").doc
    rows = {r["metric"]: r for r in comparison["rows"]}
    assert [p["key"] for p in comparison["parameters"]] == ["credit.records_to_private"]
    assert rows["credit.private_score_mean"]["difference"] < 0
    assert rows["credit.approved_share"]["difference"] < 0
    assert rows["credit.score_band_share.recorded.poor"]["difference"] > 0
    shared = "credit.wrongly_refused_through.shared_records"
    assert docs["p1"]["metrics"][shared]["count"] == 0
    assert docs["networked"]["metrics"][shared]["count"] > 0


def test_the_rescore_is_the_formula_over_each_adults_neighbours() -> None:
    """The kernel's pass against the formula written out adult by adult in Python: H from the
    book, the thin-file value or the court's list, B, F, I, and C the mean of the neighbours'
    previous (s - 350) / 600 in edge order, both worlds; and the band counts."""
    from xinyong.credit.score import private_score
    from xinyong.engine import Simulation
    from xinyong.population import neighbours_start

    sc = xinyong.load_scenario("p1", adults=2000, days=100, seed=2)
    with tempfile.TemporaryDirectory() as out:
        sim = Simulation(sc, Path(out) / "run")
        for t in range(61):
            sim.step(t)
        credit, pop = sim.module("credit"), sim.pop
        before = credit.score.copy()
        on_list = (sim.scheme.state.bits & credit.defaulters_bit) != 0
        credit.compute(61)
        got, bands = credit.score.copy(), credit.bands[-2:]
        sim.finish()
    n = pop.adults
    assert on_list.any()  # the court's list zeroes some histories
    book = np.where(
        credit.has_file, (credit.repaid + 7.0) / (credit.repaid + 3.0 * credit.defaulted + 10.0),
        0.2,
    )  # fmt: skip
    for w in (0, 1):
        c = np.empty(n)
        for a in range(n):
            start = int(neighbours_start(a, pop.nbr_block, pop.nbr_degree))
            mine = [j for j in pop.nbr[start : start + int(pop.nbr_degree[a])] if j < n]
            total = 0.0
            for j in mine:
                total += (before[j, w] - 350) / 600.0
            c[a] = total / len(mine) if mine else 0.5
        h = np.where(on_list[:, w], 0.0, book)
        want = private_score(h, credit.behaviour, credit.capacity, 0.8, c)
        assert np.array_equal(got[:, w], want), w
        edges = np.searchsorted([550, 600, 650, 700], want, side="right")
        assert bands[w][2:].tolist() == np.bincount(edges, minlength=5).tolist()


def test_the_rescore_in_two_halves_gives_the_same_scores(monkeypatch) -> None:
    """The private score computed in two halves of the adults on the engine's two threads
    (as from 50,000 adults) gives the tables of one pass: each half reads only the previous
    computation's scores, and the new ones are copied in once both are done."""
    from xinyong import threads
    from xinyong.credit import module as credit_module

    if threads.usable_cores() < 2:
        pytest.skip("one core: the engine never splits its work")
    sc = xinyong.load_scenario("p1", adults=3000, days=100, seed=4)
    one = xinyong.run(sc)
    monkeypatch.setattr(threads, "MIN_SPLIT", 1000)
    parts: list[tuple[int, int]] = []
    kernel = credit_module.rescore

    def rescore(*args: object) -> None:
        parts.append(args[-2:])
        return kernel(*args)

    monkeypatch.setattr(credit_module, "rescore", rescore)
    two = xinyong.run(sc)
    # 3000 adults split at 1500, 4 computations.
    assert sorted(set(parts)) == [(0, 1500), (1500, 3000)] and len(parts) == 2 * 4
    for name in ("credit_applications", "credit_adults", "credit_scores"):
        assert one.table(name).equals(two.table(name)), name
