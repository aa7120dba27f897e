"""Xinyong: simulate and audit social credit systems on synthetic populations."""

from xinyong.api import Run, run
from xinyong.calibration import calibrate, sensitivity
from xinyong.errors import XinyongError

# The audit package is imported first, so `xinyong.audit` below is the function (the
# package stays importable as `xinyong.audit.metrics`, ...).
from xinyong.findings import (
    Audit,
    Comparison,
    Explanation,
    audit,
    compare,
    explain,
)
from xinyong.replicates import run_replicates
from xinyong.scenario import Scenario, load_scenario
from xinyong.scheme import Pack, load_pack

__all__ = [
    "Audit",
    "Comparison",
    "Explanation",
    "Pack",
    "Run",
    "Scenario",
    "XinyongError",
    "audit",
    "calibrate",
    "compare",
    "explain",
    "load_pack",
    "load_scenario",
    "run",
    "run_replicates",
    "sensitivity",
]
__version__ = "0.1.0"
