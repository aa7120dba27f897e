"""A kind of member a module adds is named outside the module from its `module.Entity` alone
(tests/shops_module.py): calibration flows and metric checks, `xinyong list`, `validate`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from xinyong import modules
from xinyong.calibration.measure import scenario_lists, unproduced
from xinyong.calibration.targets import flows_known, unknown_metric
from xinyong.cli import main
from xinyong.scenario import load_scenario


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    modules.register("shops", "tests.shops_module")
    yield
    modules.unregister("shops")


def test_flows_and_metrics_of_the_new_kind() -> None:
    flows = flows_known()
    assert flows["flow.listed_per_shop_year"][1] == 1
    assert flows["flow.shop_share_of_listed"][1] == 2
    assert unknown_metric("flow.left_per_shop_year.closed_down") is None
    assert "takes 2 list name(s)" in unknown_metric("flow.shop_share_of_listed.closed_down")


def test_a_scenario_without_the_kind_cannot_produce_its_metrics() -> None:
    r1 = load_scenario("r1")
    assert "shop_spells" not in scenario_lists(r1)
    assert unproduced("shop.list_share.closed_down", r1) == (
        "scenario 'r1' has no shops: it does not produce metric 'shop.list_share.closed_down'"
    )
    shops = r1.with_(shops={"per_adult": 2})
    assert scenario_lists(shops)["shop_spells"] == {"closed_down"}
    assert unproduced("flow.listed_per_shop_year.closed_down", shops) is None
    assert unproduced("flow.listed_per_shop_year.open", shops) == (
        "scenario 'r1' has no shop list 'open' (it has: closed_down): it does not produce "
        "metric 'flow.listed_per_shop_year.open'"
    )


def test_list_and_validate_name_the_kind(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["list"])
    assert exit_.value.code == 0
    assert "shop packs: " in capsys.readouterr().out
    pack = tmp_path / "shops.yaml"
    pack.write_text("kind: shop\nid: corner\nlists: [closed_down]\n")
    with pytest.raises(SystemExit) as exit_:
        main(["validate", str(pack)])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == "ok: shop pack 'corner': lists closed_down"
