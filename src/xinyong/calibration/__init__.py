"""Calibration to published aggregates and Sobol sensitivity (docs/calibration.md)."""

from xinyong.calibration.fit import calibrate
from xinyong.calibration.measure import Param, parse_params
from xinyong.calibration.sobol import sensitivity, sobol_indices
from xinyong.calibration.targets import Targets, builtin_target_sets, load_targets

__all__ = [
    "Param",
    "Targets",
    "builtin_target_sets",
    "calibrate",
    "load_targets",
    "parse_params",
    "sensitivity",
    "sobol_indices",
]
