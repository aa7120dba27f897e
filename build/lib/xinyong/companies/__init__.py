"""Companies, the second entity kind (docs/model.md, "Companies"): a synthetic population of
firms with sizes, indicators, a risk trait and a legal representative among the run's adults;
true behaviour and observation by the shared layers (world.World, observe.Observation);
the yearly tax credit rating (`rating`), the company lists (`lists`) and the person lists
that follow them, in two worlds with appeals (`layer.Companies`)."""

from xinyong.entities import EntityKind
from xinyong.scenario import SIZES

# Groups are the size classes (victim weights, wrongly-listed counts by size). A company's
# consequences act on the company itself; they reach people through person lists.
COMPANY = EntityKind("company", SIZES, ())

__all__ = ["COMPANY"]
