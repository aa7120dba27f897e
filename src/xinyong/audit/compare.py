"""`xinyong compare RUN_A RUN_B`: every metric of a reform (B) against its base (A).

Which interval a difference gets depends on what the two sides hold:

- **paired-seeds** (the way to compare): both sides hold runs of the same seeds (made with
  `xinyong run --replicates K`, or by `compare --replicates K`, which runs the missing seeds).
  Each seed gives one difference B - A from the same random draws (common random numbers);
  the interval is a Student t interval over those differences. Only this and the next kind
  can call a difference "significant".
- **across-seeds**: both sides hold several seeds but not the same ones: Welch's t interval
  of the difference of the two means.
- **within-run**: one run a side. The two runs' own intervals are combined as independent;
  they leave out run-to-run variation, so no difference is called significant.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from xinyong.audit import stats
from xinyong.audit.registry import (
    ACROSS_SEEDS,
    INTERVAL_KINDS,
    KEY_METRICS,
    PAIRED_SEEDS,
    WITHIN_RUN,
)
from xinyong.audit.summary import summary_meaning
from xinyong.errors import XinyongError
from xinyong.replicates import REPLICATES, check_spawn_safe, replicate_dirs, run_seeds
from xinyong.scenario import load_scenario
from xinyong.store import read_json, write_json

PAIRED = "paired"  # where compare --replicates K keeps the seeds it had to run
SKIP = ("seed", "replicates", "wall_seconds", "days", "adults", "children", "records")
CORRECTION = (
    "Benjamini-Hochberg over the metrics tested: significant where the q-value is at most "
    "0.05 (false discovery rate 5%)"
)
NOT_TESTED = "not tested: one run a side (within-run intervals leave out run-to-run variation)"


def flat_rows(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Summary keys (with their meaning), overlaid by the audit metrics of one document."""
    rows: dict[str, dict[str, Any]] = {}
    intervals = doc["run"].get("intervals", {})
    kind = doc["run"].get("interval", WITHIN_RUN)
    for key, value in doc["run"].items():
        if isinstance(value, bool) or not isinstance(value, int | float) or key in SKIP:
            continue
        low, high = intervals.get(key, [None, None])
        rows[key] = {
            "value": value,
            "low": low,
            "high": high,
            "meaning": summary_meaning(key),
            "interval": kind if low is not None else "none",
        }
    rows.update(doc.get("metrics") or {})
    return rows


def _doc(path: Path, baseline: bool) -> dict[str, Any]:
    """One run directory's audit document, from its metrics.json or audited now (and kept)."""
    from xinyong.audit.audit import audit

    file = path / "metrics.json"
    if file.exists():
        return read_json(file, "metrics.json")
    return audit(path, baseline=baseline, report=False)


def _seed_dirs(path: Path) -> dict[int, Path]:
    """Seed -> run directory, for a single run or a replicate folder."""
    out = {}
    for d in replicate_dirs(path):
        summary = read_json(d / "summary.json", "summary.json")
        out[int(summary["seed"])] = d
    return out


def _side(path: Path, dirs: dict[int, Path], baseline: bool) -> dict[str, Any]:
    """Per-seed values of every metric on one side."""
    return side_of_docs(str(path), {s: _doc(d, baseline) for s, d in sorted(dirs.items())})


def _welch(a: list[float], b: list[float]) -> tuple[float, float, float, float]:
    """B - A of two unpaired sets of seeds: difference, Welch interval and p-value."""
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1) / len(a)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1) / len(b)
    diff = mb - ma
    if va + vb == 0:
        return diff, diff, diff, float(diff == 0)
    df = max(1, math.floor((va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))))
    half = stats.t95(df) * math.sqrt(va + vb)
    return diff, diff - half, diff + half, stats.t_p_value(diff / math.sqrt(va + vb), df)


def _paired_p(diffs: list[float]) -> float:
    """Two-sided p-value of the paired t test of per-seed differences."""
    k = len(diffs)
    mean = sum(diffs) / k
    sd = math.sqrt(sum((x - mean) ** 2 for x in diffs) / (k - 1))
    if sd == 0:
        return float(mean == 0)
    return stats.t_p_value(mean / (sd / math.sqrt(k)), k - 1)


def difference(
    a: Sequence[float | None],
    b: Sequence[float | None],
    seeds_a: Sequence[int],
    seeds_b: Sequence[int],
    row_a: dict[str, Any] | None = None,
    row_b: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """B - A for one metric from its per-seed values on each side, with the interval the
    sides allow (module docstring) and, across seeds, the t test's `p_value`; `significant`
    only from across-seed intervals (for this metric alone: `compare_sides` corrects it for
    the number of metrics compared)."""
    va = {s: v for s, v in zip(seeds_a, a, strict=True) if v is not None}
    vb = {s: v for s, v in zip(seeds_b, b, strict=True) if v is not None}
    common = sorted(set(va) & set(vb))
    out: dict[str, Any] = {"seeds": common}
    if len(common) >= 2:
        diffs = [vb[s] - va[s] for s in common]
        d, lo, hi = stats.mean_interval(diffs)
        out["p_value"] = _paired_p(diffs)
        out |= {"a": sum(va[s] for s in common) / len(common)}
        out |= {"b": sum(vb[s] for s in common) / len(common), "kind": PAIRED_SEEDS}
        out |= {"per_seed": diffs}
    elif len(va) >= 2 and len(vb) >= 2:
        d, lo, hi, out["p_value"] = _welch(list(va.values()), list(vb.values()))
        out |= {"a": sum(va.values()) / len(va), "b": sum(vb.values()) / len(vb)}
        out |= {"kind": ACROSS_SEEDS, "seeds": []}
    else:
        xa = next(iter(va.values()), None)
        xb = next(iter(vb.values()), None)
        d = None if xa is None or xb is None else xb - xa
        lo = hi = None
        sa, sb = _se(row_a or {}), _se(row_b or {})
        if d is not None and sa is not None and sb is not None:
            half = stats.Z95 * math.sqrt(sa * sa + sb * sb)
            lo, hi = d - half, d + half
        out |= {"a": xa, "b": xb, "kind": WITHIN_RUN if lo is not None else "none"}
    if out["kind"] in (PAIRED_SEEDS, ACROSS_SEEDS):
        use = common if out["kind"] == PAIRED_SEEDS else None
        for side, vals in (("a", va), ("b", vb)):
            xs = [vals[s] for s in use] if use is not None else list(vals.values())
            _, out[f"{side}_low"], out[f"{side}_high"] = stats.mean_interval(xs)
    else:
        for side, row in (("a", row_a or {}), ("b", row_b or {})):
            out[f"{side}_low"], out[f"{side}_high"] = row.get("low"), row.get("high")
    tested = out["kind"] in (PAIRED_SEEDS, ACROSS_SEEDS)
    excludes = lo is not None and hi is not None and (lo > 0 or hi < 0)
    out |= {"difference": d, "low": lo, "high": hi}
    out["significant"] = tested and excludes
    out["excludes_zero"] = excludes
    return out


def _se(row: dict[str, Any]) -> float | None:
    if row.get("low") is None or row.get("high") is None:
        return None
    return (row["high"] - row["low"]) / (2 * stats.Z95)


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out |= _flatten(v, f"{prefix}{k}.")
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: data}


def parameter_differences(a: Path, b: Path) -> list[dict[str, Any]]:
    """Every scenario key whose value differs between two run directories (seed included)."""
    return scenario_differences(
        yaml.safe_load((a / "scenario.yaml").read_text()),
        yaml.safe_load((b / "scenario.yaml").read_text()),
    )


def _run_missing(path: Path, have: dict[int, Path], seeds: list[int], where: Path, **kw) -> None:
    missing = {s: where / f"seed-{s}" for s in seeds if s not in have}
    if not missing:
        return
    sc = load_scenario(path / "scenario.yaml")
    run_seeds(sc, missing, **kw)
    have.update(missing)


def compare(
    a: str | Path,
    b: str | Path,
    *,
    baseline: bool = False,
    replicates: int | None = None,
    out: str | Path | None = None,
    workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Compare run B (the reform) with run A (the base): one row per metric (B - A).

    With `replicates` K, seeds s .. s+K-1 (s: A's seed) are made available on both sides,
    running those missing into OUT/paired/{a,b}/seed-S/ (OUT: `out`, else B's folder);
    `on_total` hears how many runs that takes, `on_done` each one that ends."""
    check_spawn_safe()
    a, b = Path(a), Path(b)
    for p in (a, b):
        if not (p / "scenario.yaml").exists():
            raise XinyongError("not a run directory (no scenario.yaml)", file=p)
    dirs_a, dirs_b = _seed_dirs(a), _seed_dirs(b)
    if replicates is not None and replicates > 1:
        first = min(dirs_a)
        seeds = [first + i for i in range(replicates)]
        where = (Path(out) if out is not None else b) / PAIRED
        total = sum(s not in dirs_a for s in seeds) + sum(s not in dirs_b for s in seeds)
        if on_total is not None:
            on_total(total)
        done = [0]

        def tick(_: int) -> None:
            done[0] += 1
            if on_done is not None:
                on_done(done[0] - 1)

        kw = {"workers": workers, "on_done": tick if total else None}
        _run_missing(a, dirs_a, seeds, where / "a", **kw)
        _run_missing(b, dirs_b, seeds, where / "b", **kw)
        dirs_a = {s: dirs_a[s] for s in seeds}
        dirs_b = {s: dirs_b[s] for s in seeds}
    sa, sb = _side(a, dirs_a, baseline), _side(b, dirs_b, baseline)
    return compare_sides(sa, sb, parameter_differences(a, b))


def side_of_docs(label: str, docs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """One side of a comparison from audit documents by seed (in-memory runs included)."""
    first = next(iter(docs.values()))
    rows = flat_rows(first)
    per = {s: flat_rows(doc) for s, doc in docs.items()}
    return {
        "path": label,
        "scenario": first["run"].get("scenario"),
        "seeds": list(docs),
        "replicates": len(docs),
        "rows": rows,
        "values": {name: [per[s].get(name, {}).get("value") for s in docs] for name in rows},
    }


def compare_sides(
    sa: dict[str, Any], sb: dict[str, Any], parameters: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """The comparison document of two sides (see `side_of_docs`)."""
    rows = []
    for name, ra in sa["rows"].items():
        if name not in sb["rows"]:
            continue
        d = difference(
            sa["values"][name], sb["values"][name], sa["seeds"], sb["seeds"], ra, sb["rows"][name]
        )
        rows.append({"metric": name, "meaning": ra.get("meaning", ""), **d})
    # Many metrics at once: the Benjamini-Hochberg correction keeps the expected share of
    # false discoveries among the metrics called significant at 5%.
    tested = [r for r in rows if r.get("p_value") is not None]
    for r, q in zip(tested, stats.benjamini_hochberg([r["p_value"] for r in tested]), strict=True):
        r["q_value"] = q
        r["significant_uncorrected"] = r["significant"]
        r["significant"] = r["significant"] and q <= 0.05
    kinds = {r["kind"] for r in rows} - {"none"}
    kind = (
        PAIRED_SEEDS
        if PAIRED_SEEDS in kinds
        else ACROSS_SEEDS
        if ACROSS_SEEDS in kinds
        else WITHIN_RUN
    )
    doc = {
        "a": {k: sa[k] for k in ("path", "scenario", "seeds", "replicates")},
        "b": {k: sb[k] for k in ("path", "scenario", "seeds", "replicates")},
        "parameters": parameters,
        "interval": kind,
        "interval_meaning": INTERVAL_KINDS[kind],
        "correction": CORRECTION if tested else None,
        "rows": rows,
    }
    if kind == WITHIN_RUN:
        doc["warning"] = (
            "One run a side: the intervals come from within each run and leave out run-to-run "
            "variation, so no difference is called significant. Use "
            "`xinyong compare A B --replicates K` (paired by seed)."
        )
    return doc


def scenario_differences(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Every dotted key whose value differs between two scenario documents."""
    fa, fb = _flatten(a), _flatten(b)
    return [
        {"key": k, "a": fa.get(k), "b": fb.get(k)}
        for k in sorted(set(fa) | set(fb))
        if fa.get(k) != fb.get(k)
    ]


def outputs(b: Path, out: str | Path | None) -> dict[str, Path]:
    """Where a comparison's files go: B's folder, a folder `out`, or `out` ending in .html."""
    if out is None:
        folder, stem = Path(b), "compare"
    elif str(out).endswith(".html"):
        folder, stem = Path(out).parent, Path(out).stem
    else:
        folder, stem = Path(out), "compare"
    folder.mkdir(parents=True, exist_ok=True)
    return {ext: folder / f"{stem}.{ext}" for ext in ("html", "csv", "json")}


def write_comparison(doc: dict[str, Any], files: dict[str, Path]) -> None:
    """compare.json, compare.csv (one row per metric) and compare.html."""
    from xinyong.audit.figures import csv_text
    from xinyong.audit.pages import render_compare

    write_json(files["json"], doc)
    files["csv"].write_text(csv_text(comparison_table(doc)), "utf-8")
    render_compare(doc, files["html"])


def comparison_table(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The comparison's rows as flat records (for CSV and DataFrames)."""
    keys = ("metric", "a", "b", "difference", "low", "high", "kind", "significant", "meaning")
    return [{k: r.get(k) for k in keys} | {"seeds": len(r.get("seeds") or [])} for r in doc["rows"]]


__all__ = ["KEY_METRICS", "REPLICATES", "compare", "difference", "parameter_differences"]
