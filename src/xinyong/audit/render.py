"""The audit's pages rendered by Jinja templates: one template per page (the audit report,
compare, sweep, an adult's timeline), a section template per report section, and the modules'
templates in their own packages (the caller names them). The pages embed plotly.js once and
fetch nothing; the output depends only on the inputs, so the same inputs give byte-identical
files."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from xinyong.audit import format as fmt
from xinyong.audit.figures import FONT, download

DOCS = "docs/model.md"


def _filter(f: Any) -> Any:
    return lambda *a: Markup(f(*a))  # the helpers escape what they print


@cache
def environment(packages: tuple[str, ...] = ()) -> Environment:
    """The audit's templates, and those of `packages` (the modules' sections)."""
    loaders = [PackageLoader("xinyong.audit", "templates")]
    loaders += [PackageLoader(package, "templates") for package in packages]
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    for name in ("text", "name", "num", "pct", "count", "value", "interval"):
        env.filters[name] = _filter(getattr(fmt, name))
    env.filters["download"] = lambda rows, name: Markup(download(name, rows or []))
    env.globals.update(DOCS=DOCS, FONT=FONT)
    return env


def write_page(
    template: str,
    path: str | Path,
    *,
    plotly: bool,
    packages: tuple[str, ...] = (),
    **context: Any,
) -> None:
    """Render `template` with `context` into `path` (templates also from `packages`);
    plotly.js is embedded when a figure is."""
    js = Markup(get_plotlyjs()) if plotly else None
    text = environment(packages).get_template(template).render(plotly_js=js, **context)
    Path(path).write_text(text, "utf-8")
