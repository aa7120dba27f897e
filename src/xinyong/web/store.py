"""What the server reads under --runs: run directories, comparisons and saved designs.

Runs are found by their marker (run.json, complete), whoever made them: the page, `xinyong
run` or a script. Their summaries and findings are read through the project's readers
(RunDir and its damage check, xinyong.audit's documents) and cached by the files'
modification times. Nothing is read through a symbolic link: a run directory holding one is
not listed, and comparisons and designs are read without following one.
"""

from __future__ import annotations

import contextlib
import html
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from xinyong.atomic import write_text
from xinyong.errors import XinyongError
from xinyong.files import read_text
from xinyong.store import MAX_JSON, RunDir, read_json
from xinyong.web.designs import design_id, to_yaml
from xinyong.web.settings import COMPARE_DIR, DESIGN_ID, DESIGNS_DIR, RUN_ID, Settings
from xinyong.yamlio import parse_yaml

MAX_DESIGN = 2 << 20  # a saved design (a resolved scenario is about 40 kB)


@dataclass
class RunInfo:
    """A finished run directory as the pages list it."""

    id: str
    path: Path
    summary: dict[str, Any]
    marker: dict[str, Any]
    audit: dict[str, Any] | None
    findings: list[str]  # escaped HTML, as the report writes them

    @property
    def replicates(self) -> int:
        return int(self.summary.get("replicates") or 1)

    @property
    def wall_seconds(self) -> float | None:
        return self.marker.get("wall_seconds")

    def public(self) -> dict[str, Any]:
        s = self.summary
        return {
            "id": self.id,
            "scenario": s.get("scenario"),
            "adults": s.get("adults"),
            "days": s.get("days"),
            "seed": s.get("seed"),
            "seeds": s.get("seeds"),
            "replicates": self.replicates,
            "wall_seconds": self.wall_seconds,
            "audited": self.audit is not None,
            "key_findings": [html.unescape(re.sub(r"<[^>]+>", "", f)) for f in self.findings],
        }


class Store:
    """Runs, comparisons and designs under `settings.runs`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cache: dict[Path, tuple[tuple, RunInfo]] = {}

    # Runs.

    def run(self, run_id: str) -> RunInfo | None:
        """A finished run by id, or None (not a plain name, absent, or not finished)."""
        try:
            path = self.settings.run_path(run_id)
        except ValueError:
            return None
        return self._info(path)

    def runs(self, skip: set[str] = frozenset()) -> list[RunInfo]:
        """Every finished run under --runs, newest first."""
        root = self.settings.runs
        if not root.is_dir():
            return []
        out = []
        for entry in root.iterdir():
            if entry.name in skip or not RUN_ID.fullmatch(entry.name) or entry.is_symlink():
                continue
            info = self._info(entry)
            if info is not None:
                out.append(info)
        out.sort(key=lambda r: self._stamp(r.path), reverse=True)
        return out

    @staticmethod
    def _stamp(path: Path) -> float:
        try:
            return (path / "run.json").stat().st_mtime
        except OSError:
            return 0.0

    def _info(self, path: Path) -> RunInfo | None:
        if not path.is_dir() or path.is_symlink():
            return None
        try:
            # The damage check, before any file is read (itself cached while the run's files
            # stay as they are): a run damaged since it was listed is no longer shown.
            rd = RunDir(path)
            summary = rd.summary()
        except (XinyongError, OSError, ValueError):
            return None
        marker = rd.marker
        if marker is None or not marker.get("complete") or "sweep" in marker:
            return None
        key = tuple(self._mtime(path / f) for f in ("run.json", "summary.json", "metrics.json"))
        hit = self._cache.get(path)
        if hit is not None and hit[0] == key:
            return hit[1]
        audit = None
        findings: list[str] = []
        if (path / "metrics.json").exists():
            with contextlib.suppress(XinyongError):
                audit = read_json(path / "metrics.json", "metrics.json")
        if isinstance(audit, dict):
            from xinyong.audit.report import key_findings

            with contextlib.suppress(Exception):  # an old or odd document: no findings
                findings = [text for text, _, _ in key_findings(audit)]
        else:
            audit = None
        info = RunInfo(path.name, path, summary, marker, audit, findings)
        self._cache[path] = (key, info)
        return info

    @staticmethod
    def _mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime_ns
        except OSError:
            return -1

    # Comparisons.

    def comparison(self, compare_id: str) -> dict[str, Any] | None:
        try:
            path = self.settings.compare_path(compare_id)
        except ValueError:
            return None
        if (path / ".web-compare").exists():
            return None
        try:
            doc = json.loads(read_text(path / "compare.json", MAX_JSON, follow_links=False))
        except (XinyongError, ValueError, RecursionError):
            return None
        return doc if isinstance(doc, dict) and isinstance(doc.get("rows"), list) else None

    def comparisons(self) -> list[tuple[str, dict[str, Any]]]:
        root = self.settings.runs / COMPARE_DIR
        if not root.is_dir():
            return []
        out = []
        for entry in sorted(root.iterdir(), key=self._stamp_of_compare, reverse=True):
            doc = self.comparison(entry.name) if RUN_ID.fullmatch(entry.name) else None
            if doc is not None:
                out.append((entry.name, doc))
        return out

    @staticmethod
    def _stamp_of_compare(path: Path) -> float:
        try:
            return (path / "compare.json").stat().st_mtime
        except OSError:
            return 0.0

    # Designs.

    def save_design(self, data: dict[str, Any]) -> str:
        """Keep a valid design; its id is the hash of its YAML."""
        text = to_yaml(data)
        did = design_id(text)
        path = self.settings.design_path(did)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            saved = list(path.parent.glob("*.yaml"))
            if len(saved) >= self.settings.max_designs:
                oldest = min(saved, key=lambda p: p.stat().st_mtime)
                oldest.unlink(missing_ok=True)
            write_text(path, text)
        return did

    def design(self, did: str) -> dict[str, Any] | None:
        try:
            path = self.settings.design_path(did)
            data, _ = parse_yaml(read_text(path, MAX_DESIGN, follow_links=False), path)
        except (ValueError, OSError, XinyongError):
            return None
        return data if isinstance(data, dict) else None

    def design_text(self, did: str) -> str | None:
        try:
            return read_text(self.settings.design_path(did), MAX_DESIGN, follow_links=False)
        except (ValueError, OSError, XinyongError):
            return None

    def designs(self) -> list[tuple[str, str]]:
        """(id, name) of the saved designs, newest first."""
        root = self.settings.runs / DESIGNS_DIR
        if not root.is_dir():
            return []
        files = sorted(root.glob("*.yaml"), key=lambda p: p.stat().st_mtime, reverse=True)
        out = []
        for f in files:
            if not DESIGN_ID.fullmatch(f.stem):
                continue
            name = f.stem
            with contextlib.suppress(OSError, yaml.YAMLError, AttributeError, XinyongError):
                first = read_text(f, MAX_DESIGN, follow_links=False).split("\n", 1)[0]
                if first.startswith("name:"):
                    name = str(yaml.safe_load(first)["name"])
            out.append((f.stem, name))
        return out


def wrongly_listed(path: Path, lst: str) -> list[int]:
    """Adults who were on list `lst` at some point only because of wrong records (the
    recorded world listed them, the shadow world did not), as the audit counts them."""
    from xinyong.audit.queries import segments_sql, spells_sql

    rd = RunDir(path)
    if lst not in rd.meta().get("lists", {}):
        return []
    days = int(rd.summary()["days"])
    seg = segments_sql(spells_sql(days, [lst]), "person, list")
    con = rd.connect(threads=1)
    rows = con.sql(
        f"SELECT DISTINCT person FROM ({seg}) WHERE rec > 0 AND sh = 0 ORDER BY person"
    ).fetchall()
    return [int(r[0]) for r in rows]


def pick(people: list[int]) -> int | None:
    return random.SystemRandom().choice(people) if people else None
