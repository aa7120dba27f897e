"""Entity kinds: who the layers act on. An entity kind has a population (cities, groups, risk
and civic traits in trait buckets), a behaviour catalogue, channels, a scheme state in two
worlds, lists, and relations through which its consequences reach others. Each layer compiles
its own part of the scenario (`compile_world`, `compile_observation`, `compile_scheme`,
`compile_consequences`), and its kernels read the kind only through views (world.Traits,
observe.VictimPool, scheme.state.StateView, ...): a second kind is a declaration and its
packs, not a copy of the kernels (tests/test_entities.py runs the kernels on a toy kind)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from xinyong.consequences import ConsequenceTables, compile_consequences
from xinyong.observe import ObservationTables, compile_observation
from xinyong.scenario import ADULT_RELATIONS, GROUPS, Scenario
from xinyong.scheme.compile import SchemeTables, compile_scheme
from xinyong.world import Catalogue, WorldTables, compile_world


@dataclass(frozen=True)
class EntityKind:
    """A declaration: the kind's name, its groups (index 0, 1, ... in every array) and the
    relations its consequences can target besides the member."""

    name: str
    groups: tuple[str, ...]
    relations: tuple[str, ...]


ADULT = EntityKind("adult", GROUPS, ADULT_RELATIONS)


@dataclass
class EntityTables:
    """Everything compiled for one entity kind, layer by layer."""

    kind: EntityKind
    world: WorldTables
    observation: ObservationTables
    scheme: SchemeTables
    consequences: ConsequenceTables

    def for_city(self, k: int) -> EntityTables:
        """City k's tables alone, as city 0: what a city engine of a multi-city run reads."""
        return replace(
            self, scheme=self.scheme.for_city(k), consequences=self.consequences.for_city(k)
        )

    @property
    def catalogue(self) -> Catalogue:
        cons = self.consequences
        return self.world.catalogue(cons.effect_contexts, cons.multipliers)


def compile_entity(sc: Scenario, kind: EntityKind = ADULT) -> EntityTables:
    world = compile_world(sc)
    scheme = compile_scheme(sc)
    return EntityTables(
        kind,
        world,
        compile_observation(sc, world.behaviours, kind.groups),
        scheme,
        compile_consequences(sc, scheme, kind.relations),
    )
