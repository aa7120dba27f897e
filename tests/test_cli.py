"""The command line, run as a user runs it: exit codes, one-line errors, run directories."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from xinyong.scheme.schema import PACKS_DIR

PACK = (PACKS_DIR / "rongcheng.yaml").read_text()


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "xinyong.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def assert_clean_error(res: subprocess.CompletedProcess, *parts: str) -> None:
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


def test_validate_builtin_packs_and_scenarios() -> None:
    for name in ("rongcheng", "national-defaulters", "suqian", "xiamen-egret"):
        res = cli("validate", str(PACKS_DIR / f"{name}.yaml"))
        assert res.returncode == 0, res.stderr
        assert f"ok: pack '{name}'" in res.stdout


def test_unknown_behaviour_in_pack(tmp_path: Path) -> None:
    text = PACK.replace("  fare_evasion:", "  fare_dodging:")
    path = write(tmp_path, "pack.yaml", text)
    res = cli("validate", str(path))
    assert_clean_error(
        res,
        f"{path}:{line_of(text, 'fare_dodging')}",
        "rules.fare_dodging",
        "unknown behaviour 'fare_dodging'",
    )


def test_unknown_list_in_effect(tmp_path: Path) -> None:
    text = PACK.replace(
        "effects: [{list: transport_ban, days: 365}]", "effects: [{list: travel_ban, days: 365}]"
    )
    path = write(tmp_path, "pack.yaml", text)
    res = cli("validate", str(path))
    assert_clean_error(
        res,
        f":{line_of(text, 'travel_ban')}",
        "unknown list 'travel_ban'",
        "rules.disruptive_flight.effects.0.list",
    )


def test_tiers_not_monotone(tmp_path: Path) -> None:
    text = PACK.replace("{name: AA, min_score: 1030", "{name: AA, min_score: 1060")
    path = write(tmp_path, "pack.yaml", text)
    res = cli("validate", str(path))
    assert_clean_error(
        res, f":{line_of(text, 'min_score: 1060')}", "tiers.1.min_score", "fall strictly"
    )


def test_illustrative_needs_a_reason(tmp_path: Path) -> None:
    text = PACK.replace(
        'fare_evasion: {points: -10, expiry_days: 365, source: illustrative, note: "between a '
        'traffic ticket and a fee arrear"}',
        "fare_evasion: {points: -10, expiry_days: 365, source: illustrative}",
    )
    path = write(tmp_path, "pack.yaml", text)
    res = cli("validate", str(path))
    assert_clean_error(res, "rules.fare_evasion", "reasoning")


def test_tier_cap_needs_an_expiry(tmp_path: Path) -> None:
    text = PACK.replace(
        'heroic_act: {points: 30, expiry_days: 365, source: fp-2018, note: "heroic act +30"}',
        'heroic_act: {source: fp-2018, note: "x", effects: [{tier_at_most: C}]}',
    )
    path = write(tmp_path, "pack.yaml", text)
    assert_clean_error(cli("validate", str(path)), "rules.heroic_act", "expiry_days")


def test_run_with_a_custom_pack_repeats_from_its_directory(tmp_path: Path) -> None:
    write(tmp_path, "mytown.yaml", PACK.replace("id: rongcheng", "id: mytown"))
    scenario = write(
        tmp_path,
        "town.yaml",
        "extends: r1\nname: town\ncities: [{name: town, share: 1.0, pack: mytown.yaml}]\n",
    )
    out, again = tmp_path / "run", tmp_path / "again"
    args = ("--adults", "500", "--days", "20", "--quiet")
    assert cli("run", str(scenario), "--out", str(out), *args).returncode == 0
    res = cli("run", str(out / "scenario.yaml"), "--out", str(again), "--quiet")
    assert res.returncode == 0, res.stderr
    assert pq.read_table(again / "records").equals(pq.read_table(out / "records"))


def test_negative_probability_in_scenario(tmp_path: Path) -> None:
    text = "extends: r1\nname: bad\nchannels:\n  camera: {detect: -0.3}\n"
    path = write(tmp_path, "bad.yaml", text)
    res = cli("validate", str(path))
    assert_clean_error(res, f"{path}:4", "channels.camera.detect", "greater than or equal to 0")


def test_zero_adults_from_the_command_line() -> None:
    res = cli("run", "r1", "--adults", "0", "--quiet")
    assert_clean_error(res, "population.adults", "greater than or equal to 1")


def test_bad_override_key_and_value() -> None:
    assert_clean_error(
        cli("run", "r1", "--set", "channels.camera.detect=2", "--quiet"),
        "channels.camera.detect",
        "less than or equal to 1",
    )
    assert_clean_error(cli("run", "r1", "--set", "nonsense", "--quiet"), "KEY=VALUE")


def test_unknown_names_suggest_the_closest_known_one(tmp_path: Path) -> None:
    assert_clean_error(
        cli("run", "s1", "--set", "channels.camera.misattrib=0.05", "--quiet"),
        "channels.camera.misattrib (from --set)",
        "unknown key 'misattrib' (did you mean 'misattribute'?)",
    )
    assert_clean_error(cli("run", "nationl", "--quiet"), "did you mean 'national'?")
    assert_clean_error(  # inside a list of mappings
        cli("run", "r1", "--set", "cities.0.shares=1", "--quiet"), "did you mean 'share'?"
    )
    text = "extends: r1\nname: mine\npopulaton:\n  adults: 100\n"
    path = write(tmp_path, "mine.yaml", text)
    assert_clean_error(cli("validate", str(path)), f"{path}:3", "did you mean 'population'?")
    # Nothing close: the keys allowed there instead.
    assert_clean_error(
        cli("run", "r1", "--set", "appeals.zzz=1", "--quiet"), "unknown key 'zzz' (known: "
    )


def test_flags_take_no_value_in_the_help() -> None:
    res = cli("audit", "--help")
    assert res.returncode == 0 and "--all" in res.stdout
    assert "<bool>" not in res.stdout


def test_script_must_name_real_adults_and_behaviours() -> None:
    res = cli("run", "r1", "--adults", "2", "--quiet", "--set", "script={0: [[5, jaywalking]]}")
    assert_clean_error(res, "script.0.0", "no adult 5")
    res = cli("run", "r1", "--adults", "2", "--quiet", "--set", "script={0: [[1, flying]]}")
    assert_clean_error(res, "script.0.0", "unknown behaviour 'flying'")


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    assert_clean_error(cli("validate", str(tmp_path / "nope.yaml")), "nope.yaml", "not found")
    bad = write(tmp_path, "broken.yaml", "id: x\nrules: [unclosed\n")
    assert_clean_error(cli("validate", str(bad)), "broken.yaml:", "invalid YAML")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    assert_clean_error(cli("validate", str(binary)), "binary.yaml", "cannot read")
    assert_clean_error(cli("run", "no-such-scenario", "--quiet"), "unknown scenario")


def test_run_writes_a_complete_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = cli("run", "s1", "--adults", "3000", "--days", "40", "--out", str(out), "--quiet")
    assert res.returncode == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "mean_score",
        "tier_share.AAA",
        "list_share.blacklist",
        "ever_listed_share.blacklist",
        "neg_records_per_adult_year",
        "pos_records_per_adult_year",
        "wrong_record_share",
        "wrongly_listed_share.blacklist",
        "wrongly_listed_share_by_group.blacklist.minority",
        "wrongly_listed_share_by_group.blacklist.majority",
        "wrongly_listed_ratio.blacklist",
        "children_restricted_share",
        "association_records_per_adult_year",
        "appeals_filed_per_1000",
        "appeals_upheld_per_1000",
        "mean_deter",
        "adults",
        "days",
        "seed",
    ):
        assert key in summary, key
    # The wall time differs from run to run: it is kept in the marker, not the summary.
    assert json.loads((out / "run.json").read_text())["wall_seconds"] > 0
    assert summary["adults"] == 3000 and summary["days"] == 40
    records = pq.read_table(out / "records").num_rows
    assert records == summary["records"] > 0
    # The resolved scenario repeats the run exactly.
    again = tmp_path / "again"
    res = cli("run", str(out / "scenario.yaml"), "--out", str(again), "--quiet")
    assert res.returncode == 0, res.stderr
    assert pq.read_table(again / "records").equals(pq.read_table(out / "records"))
    # An existing run directory is not overwritten silently.
    assert_clean_error(
        cli("run", "s1", "--adults", "10", "--out", str(out), "--quiet"), "--overwrite"
    )
    # Nor is a folder that is not a run directory, even with --overwrite.
    keep = tmp_path / "documents"
    keep.mkdir()
    (keep / "thesis.txt").write_text("precious")
    res = cli("run", "s1", "--adults", "10", "--out", str(keep), "--overwrite", "--quiet")
    assert_clean_error(res, "not a run directory")
    assert (keep / "thesis.txt").read_text() == "precious"
    res = cli("sql", str(out), "SELECT count(*) AS n FROM records", "--json")
    assert json.loads(res.stdout)["n"] == records
    assert_clean_error(cli("sql", str(out), "SELECT nope FROM records"), "query")


@pytest.mark.parametrize("name", ["r1", "s1", "three-cities"])
def test_builtin_scenarios_run(name: str, tmp_path: Path) -> None:
    res = cli(
        "run", name, "--adults", "2000", "--days", "30", "--out", str(tmp_path / name), "--quiet"
    )
    assert res.returncode == 0, res.stderr


def test_audit_compare_explain_from_the_command_line(tmp_path: Path) -> None:
    base, reform = tmp_path / "base", tmp_path / "reform"
    common = ("--adults", "2000", "--days", "60", "--seed", "4", "--quiet")
    assert cli("run", "s1", "--out", str(base), *common).returncode == 0
    res = cli("run", "s1", "--out", str(reform), *common, "--set", "appeals.alpha=0")
    assert res.returncode == 0, res.stderr
    res = cli("audit", str(base))
    assert res.returncode == 0, res.stderr
    metrics = json.loads((base / "metrics.json").read_text())
    # The terminal gets the key findings and the key metrics, names whole; the rest is in
    # the files, or with --all.
    lines = res.stdout.splitlines()
    assert lines[0] == "key findings" and "key metrics" in lines
    assert "wrongly_listed_share.blacklist = " in res.stdout
    assert "…" not in res.stdout and len(lines) < 80
    assert re.search(r"\d+ more metrics", res.stdout)
    res = cli("audit", str(base), "--all", "--no-baseline", "--no-report")
    assert res.returncode == 0, res.stderr
    for name in json.loads((base / "metrics.json").read_text())["metrics"]:
        assert f"{name} = " in res.stdout
    assert "…" not in res.stdout
    assert metrics["metrics"]["appeals_filed_per_1000"]["value"] > 0
    assert (base / "report.html").exists() and (base / "baseline" / "summary.json").exists()
    out = tmp_path / "compare.html"
    res = cli("compare", str(base), str(reform), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "appeals_filed_per_1000" in res.stdout and out.exists()
    # Switching appeals off removes every appeal: the reform's rate is exactly 0.
    reform_metrics = json.loads((reform / "metrics.json").read_text())["metrics"]
    assert reform_metrics["appeals_filed_per_1000"]["value"] == 0
    res = cli("explain", str(base), "0", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["person"]["person"] == 0
    assert_clean_error(cli("audit", str(tmp_path / "nothing")), "not a run directory")
