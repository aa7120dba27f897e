"""Companies, the second entity kind (docs/companies.md): a synthetic population of firms with
sizes, indicators, a risk trait and a legal representative among the run's adults; true
behaviour and observation by the shared layers (world.World, observe.Observation); the yearly
tax credit rating (`rating`), the company lists (`lists`) and the person lists that follow
them, in two worlds with appeals (`layer.Companies`). A module (`module.CompaniesModule`),
declared here."""

from xinyong.companies import params
from xinyong.companies.schema import CompanyPack
from xinyong.module import Entity, Spec, Table

SPEC = Spec(
    name="companies",
    fields={
        "companies": (params.Companies | None, None),
        "company_packs": (dict[str, CompanyPack], {}),
    },
    runtime="xinyong.companies.module:CompaniesModule",
    tables=(
        Table("companies", columns=("company", "city", "size", "risk")),
        Table(
            "company_records",
            nullable=("actor",),
            columns=("record_id", "day", "company", "behaviour", "channel", "truth"),
        ),
        Table(
            "company_appeals",
            nullable=("upheld",),
            columns=("record_id", "company", "filed_day", "decision_day", "upheld"),
        ),
        Table(
            "company_spells",
            nullable=("end",),
            columns=("company", "list", "world", "start", "end"),
        ),
        Table("company_ratings", columns=("company", "year", "world", "grade")),
        Table("company_daily", columns=("day", "city")),
    ),
    check=params.check,
    load=params.load,
    adult_packs=params.person_lists,
    memory_per_adult=params.memory_per_adult,
    entity=Entity(
        kind="company",
        plural="companies",
        table="companies",
        spells="company_spells",
        lists=params.lists,
        count=params.count,
        packs=lambda sc: list(sc.companies.packs),
        check_pack=params.check_pack,
    ),
)
