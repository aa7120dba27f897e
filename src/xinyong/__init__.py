"""Xinyong: simulate and audit social credit systems on synthetic populations."""

from xinyong.api import Run, run
from xinyong.errors import XinyongError
from xinyong.scenario import Scenario, load_scenario
from xinyong.scheme import Pack, load_pack

__all__ = ["Pack", "Run", "Scenario", "XinyongError", "load_pack", "load_scenario", "run"]
__version__ = "0.1.0"
