"""What the audit builds on the modules' audit pieces (registry.module_audits, read off the
module registry): every metric declaration (docs/model.md's tables) and the explain dispatch
over entity kinds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xinyong.audit.registry import (
    METRICS,
    EntityExplainer,
    Metric,
    ModuleAudit,
    adult_lines,
    member_lines,
    metric_tables,
    module_audits,
)
from xinyong.errors import XinyongError

__all__ = ["ModuleAudit", "adult_lines", "member_lines", "module_audits"]


def all_metrics() -> tuple[Metric, ...]:
    """The adults' metric declarations, then every module's."""
    return (*METRICS, *(m for mod in module_audits() for m in mod.metrics))


def docs_tables() -> str:
    """docs/model.md's generated metric tables (tests/test_registry.py keeps them in sync)."""
    return metric_tables(all_metrics())


def explainers() -> dict[str, EntityExplainer]:
    """The explainer of each entity kind: adults', and every module's."""
    from xinyong.audit.explain import ADULT

    out = {ADULT.kind: ADULT}
    for mod in module_audits():
        out.update({e.kind: e for e in mod.explainers})
    return out


def explainer(kind: str) -> EntityExplainer:
    """The explainer of entity kind `kind` (one clear line when there is none)."""
    found = explainers()
    if kind not in found:
        raise XinyongError(f"no explainer for {kind!r} (known: {', '.join(found)})", field="kind")
    return found[kind]


def explain(run: str | Path, entity_kind: str, ident: int) -> dict[str, Any]:
    """One member's story (an adult's, or a member of a kind a module adds) from a run
    directory."""
    return explainer(entity_kind).explain(run, ident)
