"""The registry of modules: the one file outside a module's folder that names it.

Each entry is a module's name and the package whose `SPEC` declares it (module.Spec). The
order is fixed: a module's random streams are keyed on its place here, so adding a module at
the end leaves every other module's draws as they were. Modules outside the project are added
after the built-in ones with `register`, or for every process of a run (the command line, the
processes of replicates) with the environment variable XINYONG_MODULES="name=package,...".
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from xinyong.module import Entity, Spec

BUILTIN: tuple[tuple[str, str], ...] = (
    ("companies", "xinyong.companies"),
    ("credit", "xinyong.credit"),
)

ENV = "XINYONG_MODULES"


def _from_env() -> list[tuple[str, str]]:
    out = []
    for entry in os.environ.get(ENV, "").split(","):
        name, _, package = entry.strip().partition("=")
        if name and package:
            out.append((name.strip(), package.strip()))
    return out


_registered: list[tuple[str, str]] = [*BUILTIN, *_from_env()]
_specs: list[Spec] | None = None
version = 0  # changes whenever the registry does (the scenario model is rebuilt then)


def specs() -> list[Spec]:
    """Every registered module's declaration, in registry order."""
    global _specs
    if _specs is None:
        _specs = [importlib.import_module(package).SPEC for _, package in _registered]
        for (name, package), spec in zip(_registered, _specs, strict=True):
            if spec.name != name:
                raise TypeError(f"{package}.SPEC is named '{spec.name}', registered as '{name}'")
    return _specs


def register(name: str, package: str) -> None:
    """Add a module (a package with a `SPEC`) after the built-in ones: for modules outside
    the project, and for the contract's own tests."""
    global _specs, version
    if name not in [n for n, _ in _registered]:
        _registered.append((name, package))
        _specs, version = None, version + 1


def unregister(name: str) -> None:
    global _registered, _specs, version
    if name in [n for n, _ in BUILTIN]:
        raise ValueError(f"'{name}' is a built-in module")
    _registered = [(n, p) for n, p in _registered if n != name]
    _specs, version = None, version + 1


def active(sc: Any) -> list[tuple[int, Spec]]:
    """The modules a scenario switches on, with their place in the registry."""
    return [(slot, spec) for slot, spec in enumerate(specs()) if spec.active(sc)]


def tables(sc: Any = None) -> tuple[str, ...]:
    """The tables the modules write (of those `sc` switches on; all without `sc`)."""
    chosen = specs() if sc is None else [s for _, s in active(sc)]
    return tuple(t.name for spec in chosen for t in spec.tables)


def nullable() -> dict[str, tuple[str, ...]]:
    return {t.name: t.nullable for spec in specs() for t in spec.tables}


def columns() -> dict[str, tuple[str, ...]]:
    """The columns each module table must hold (the damage check of a run's tables)."""
    return {t.name: t.columns for spec in specs() for t in spec.tables}


def entities(sc: Any = None) -> list[Entity]:
    """The kinds of member the modules add (of those `sc` switches on; all without `sc`)."""
    chosen = specs() if sc is None else [s for _, s in active(sc)]
    return [spec.entity for spec in chosen if spec.entity is not None]
