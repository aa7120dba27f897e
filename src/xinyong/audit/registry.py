"""The audit's registered pieces: every metric family with its definition, its one-line meaning,
its legal mapping and the tables it reads; the report's section type; what a module adds to
the audit (`ModuleAudit`). metrics.json rows take their meaning and mapping from here, and
docs/model.md's metric tables are generated from here (`metric_tables`, tested in sync).

This module declares; it computes nothing, and imports no other part of the audit but `stats`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from xinyong import modules
from xinyong.audit import stats

FOUR_FIFTHS = (0.8, 1.25)
MIN_COUNT = 10  # people behind each side of a disparity before it may be flagged
MINOR_GRAVITY = 2  # gravity 1-2: "minor" behaviour for the proportionality test

# Kinds of interval, stated on every metric row ("interval") and every figure.
WITHIN_RUN = "within-run"  # from one run (Wilson, Katz, Greenwood, Poisson): no run-to-run
ACROSS_SEEDS = "across-seeds"  # Student t over the means of K seeds: includes run-to-run
PAIRED_SEEDS = "paired-seeds"  # Student t over per-seed differences of a reform (compare)
NO_INTERVAL = "none"
INTERVAL_KINDS = {
    WITHIN_RUN: "95% interval from within one run: it ignores run-to-run variation",
    ACROSS_SEEDS: "95% Student t interval across seeds: includes run-to-run variation",
    PAIRED_SEEDS: "95% Student t interval of per-seed differences (paired by seed)",
    NO_INTERVAL: "no interval",
}

# The metrics compare draws side by side and sweep draws as curves.
KEY_METRICS = (
    "wrongly_listed_share.blacklist",
    "ever_wrongly_listed_share.blacklist",
    "list_share.blacklist",
    "wrongly_listed_ratio.blacklist",
    "undeserved_sanction_person_days",
    "children_restricted_only_by_wrong_records_share",
    "wrong_record_share",
    "appeals_upheld_per_1000",
    "mean_score",
)


@dataclass(frozen=True)
class Law:
    """A legal test or convention a metric maps to: `short` in the docs' tables, `full` in
    metrics.json's `maps_to`."""

    short: str
    full: str


CONTEXT = Law("context", "count (context)")
AEQUITAS = Law(
    "Aequitas", "Aequitas/Fairlearn: group rates as ratio and difference to a named reference"
)
FDR = Law(
    "Aequitas (false discovery rate)",
    "Aequitas: false discovery rate (share of those flagged who should not be)",
)
ART_5_C_I = Law(
    "Art. 5(1)(c)(i)",
    "EU AI Act Art. 5(1)(c)(i): detrimental treatment in unrelated social contexts",
)
ART_5_C_II = Law(
    "Art. 5(1)(c)(ii)",
    "EU AI Act Art. 5(1)(c)(ii): treatment disproportionate to the behaviour's gravity",
)
GDPR_22 = Law("GDPR Art. 22", "GDPR Art. 22: right to contest solely automated decisions")
FOUR_FIFTHS_RULE = Law(
    "four-fifths rule",
    "four-fifths rule (ratio within [0.8, 1.25] against the reference group)",
)
NECESSITY = Law(
    "Charter Art. 52(1), necessity",
    "necessity test: does the scheme change behaviour at all (EU Charter Art. 52(1))",
)
SPEECH = Law("Charter Art. 11", "chilling effect on expression (EU Charter Art. 11)")
PROPORTIONALITY = Law(
    "Charter Art. 52(1), proportionality",
    "proportionality stricto sensu: benefit weighed against harm (Art. 52(1))",
)


@dataclass(frozen=True)
class Metric:
    """One metric family. `name` and `meaning` are templates over the key's parts ({list},
    {group}, ...): `Metric.row` fills them. `definition` is the docs' wording (Markdown)."""

    name: str
    topic: str  # the docs' heading it is listed under
    definition: str
    meaning: str
    maps_to: Law
    tables: tuple[str, ...]
    docs_maps_to: str | None = None  # when the docs say more than `maps_to.short`
    # A change or a correlation: below 0 is a value it can take. Every other metric is a
    # share, count, rate or number of days, so an interval across seeds stops at 0.
    signed: bool = False

    def key(self, **parts: Any) -> str:
        return self.name.format(**parts)

    def row(
        self,
        value: Any,
        low: Any = None,
        high: Any = None,
        *,
        count: int | None = None,
        of: int | None = None,
        maps_to: Law | None = None,
        **parts: Any,
    ) -> dict[str, Any]:
        """A metrics.json row: the value, its interval, and `count` of `of` behind a share."""
        law = maps_to or self.maps_to
        row = {
            "value": value,
            "low": low,
            "high": high,
            "meaning": self.meaning.format(**parts),
            "maps_to": law.full,
        }
        row["interval"] = NO_INTERVAL if low is None and high is None else WITHIN_RUN
        if self.signed:
            row["signed"] = True
        if count is not None:
            row["count"], row["of"] = count, of
        return row

    def put(self, m: dict, value: Any, low: Any = None, high: Any = None, **kw: Any) -> None:
        """Put the row into `m` under its key (the key's parts and the row's fields in `kw`)."""
        parts = {k: v for k, v in kw.items() if k not in ("count", "of", "maps_to")}
        m[self.key(**parts)] = self.row(value, low, high, **kw)

    def fraction(self, m: dict, k: int, n: int, **parts: Any) -> None:
        """Put k of n as a share with its Wilson interval, keeping both counts."""
        self.put(m, *stats.wilson(k, n), count=k, of=n, **parts)


@dataclass(frozen=True)
class Section:
    """A section of the audit report: its anchor, its template and the function that computes
    the template's context from the audit document (`build(page, doc)`; None: no section)."""

    anchor: str
    template: str
    build: Callable[[Any, dict[str, Any]], dict[str, Any] | None]


@dataclass(frozen=True)
class EntityExplainer:
    """How `explain` tells one member's story: `explain(run_dir, id)` gives the JSON-ready
    document, `console(doc, console)` prints it, `html(doc, path)` writes its page (or None)."""

    kind: str
    explain: Callable[[Any, int], dict[str, Any]]
    console: Callable[[dict[str, Any], Any], None]
    html: Callable[[dict[str, Any], Any], None] | None = None
    wrap: Callable[[dict[str, Any]], Any] | None = None  # the Python API's object for a story


@dataclass(frozen=True)
class ModuleAudit:
    """What a module adds to the audit (module.Module.audit): its summary metrics and their
    meanings; and where it has them, its metrics (computed into the document's `metrics`,
    and its tables under a key of its own, when `applies(meta)`), its report section (a
    template of `package`), the findings that open the report, the explainers of its entity
    kinds and its lines in the story of an adult or other member."""

    package: str
    applies: Callable[[dict[str, Any]], bool]
    summary: Callable[..., dict[str, Any]]  # (con, meta, days, adults)
    summary_meanings: dict[str, str]
    compute: Callable[..., None] | None = None  # (con, out, meta, T)
    metrics: tuple[Metric, ...] = ()
    section: Section | None = None
    headline: Callable[[dict[str, Any]], list[str]] = lambda doc: []  # open the report
    explainers: tuple[EntityExplainer, ...] = ()
    # What it says about one member in `explain`, by entity kind ("adult", or a kind a module adds):
    # (con, meta, id) -> lines.
    lines: dict[str, Callable[..., list[str]]] = field(default_factory=dict)


def lock_in_metrics(
    prefix: str, member: str, table: str, topic: str = "Lock-in"
) -> tuple[Metric, ...]:
    """The Kaplan-Meier lock-in metrics of a list family (adults' or a module's)."""
    return (
        Metric(
            f"{prefix}median_stay_days.{{list}}",
            topic,
            "median time on the list (Kaplan-Meier over recorded spells, censored at T); null "
            "when more than half are still listed",
            "median time on {list} (Kaplan-Meier, censored at T); null when more than half are "
            "still listed",
            ART_5_C_II,
            (table,),
        ),
        Metric(
            f"{prefix}mean_stay_days_restricted.{{list}}",
            topic,
            "restricted mean time on the list: the mean of min(stay, τ), τ the longest stay "
            "seen, from the Kaplan-Meier curve; defined when the median is not",
            "mean time on {list}, at least: listings still running count as ending at {tau} "
            "days, the longest stay seen (Kaplan-Meier); given when the median is not",
            ART_5_C_II,
            (table,),
        ),
        Metric(
            f"{prefix}still_listed_after_1y.{{list}}",
            topic,
            "share of spells lasting more than 365 days (runs longer than a year)",
            "share of {list} spells lasting more than 365 days (Kaplan-Meier)",
            ART_5_C_II,
            (table,),
        ),
        Metric(
            f"{prefix}spells.{{list}}",
            topic,
            f"number of recorded spells of {member} on the list",
            "spells on {list} (recorded world)",
            CONTEXT,
            (table,),
        ),
    )


def _m(
    name: str,
    topic: str,
    definition: str,
    meaning: str,
    law: Law,
    *tables: str,
    signed: bool = False,
) -> Metric:
    return Metric(name, topic, definition, meaning, law, tables, signed=signed)


WRONGFUL, FALSE, SPILL, COLLATERAL = (
    "Wrongful listing",
    "False records and detection",
    "Spillover and proportionality",
    "Collateral: children and associates",
)
REDRESS, BEHAVIOUR = "Redress", "Behaviour change (with the scheme-off baseline)"
DURATION = "Wrongful duration"

LIST_SHARE = _m(
    "list_share.{list}",
    WRONGFUL,
    "adults on the list at T (count: how many)",
    "adults on {list} at T",
    CONTEXT,
    "persons",
)
WRONGLY_LISTED_SHARE = _m(
    "wrongly_listed_share.{list}",
    WRONGFUL,
    "adults wrongly on the list at T",
    "adults on {list} at T whose correct records alone would not put them there ({kind})",
    AEQUITAS,
    "persons",
)
WRONGLY_LISTED_OF_LISTED = _m(
    "wrongly_listed_of_listed.{list}",
    WRONGFUL,
    "of those on the list at T, the share wrongly on it",
    "of the adults on {list} at T, the share listed only through wrong records",
    FDR,
    "persons",
)
EVER_LISTED_SHARE = _m(
    "ever_listed_share.{list}",
    WRONGFUL,
    "adults on the list on at least one day",
    "adults on {list} on at least one day",
    CONTEXT,
    "spells",
    "persons",
)
EVER_WRONGLY_LISTED_SHARE = _m(
    "ever_wrongly_listed_share.{list}",
    WRONGFUL,
    "adults wrongly on the list on at least one day",
    "adults wrongly on {list} on at least one day: listed while their correct records alone "
    "would not have listed them ({kind})",
    AEQUITAS,
    "spells",
    "persons",
)
EVER_WRONGLY_BY_GROUP = _m(
    "ever_wrongly_listed_share_by_group.{list}.{group}",
    WRONGFUL,
    "the same within each group (count per group)",
    "{group} adults wrongly on {list} on at least one day, of all {group} adults",
    AEQUITAS,
    "spells",
    "persons",
)
WRONGLY_LISTED_PERSON_DAYS = Metric(
    "wrongly_listed_person_days.{list}",
    WRONGFUL,
    "days adults spent wrongly on the list, added up",
    "person-days on {list} that the shadow world would not have spent there (each adult's days "
    "wrongly listed, added up)",
    CONTEXT,
    ("spells", "persons"),
    docs_maps_to="Art. 5(1)(c)(ii) for sanction lists",
)
UNDESERVED_SANCTION_PERSON_DAYS = _m(
    "undeserved_sanction_person_days",
    WRONGFUL,
    "person-days on which an adult was wrongly on at least one sanction list (a day counts "
    "once per person)",
    "person-days on which an adult was on at least one sanction list that their correct "
    "records alone would not have put them on",
    ART_5_C_II,
    "spells",
)
FALSE_RECORD_SHARE = _m(
    "false_record_share.{channel}",
    FALSE,
    "share of the channel's negative records that are misattributed or false reports",
    "negative records from {channel} that are misattributed or false reports",
    GDPR_22,
    "records",
)
DETECTION_RATIO = _m(
    "detection_ratio.{group}",
    FALSE,
    "negative records against the group per true negative event by the group (above the "
    "detection rate: they carry others' records)",
    "negative records against {group} adults per true negative event by them (above the "
    "detection rate means they carry others' records)",
    AEQUITAS,
    "behaviour_daily",
)
(MEDIAN_STAY, MEAN_STAY, STILL_LISTED_1Y, SPELLS) = lock_in_metrics("", "adults", "spells")
WRONGFUL_SPELLS = _m(
    "wrongful_spells.{list}",
    DURATION,
    "wrongful spells on the list: maximal runs of days on it while the shadow world has the "
    "adult off it (one adult may have several)",
    "wrongful spells on {list}: maximal runs of days on it while the shadow world has the adult "
    "off it",
    CONTEXT,
    "spells",
)
WRONGFUL_OPEN = _m(
    "wrongful_spells_open_at_T.{list}",
    DURATION,
    "share of the wrongful spells still running at T (censored in the durations below)",
    "wrongful spells on {list} still running at T (censored in the durations)",
    CONTEXT,
    "spells",
)


def _duration(name: str, definition: str, meaning: str) -> tuple[Metric, Metric]:
    """A wrongful-duration metric per list and per list and group."""
    return (
        _m(f"{name}.{{list}}", DURATION, definition, meaning, ART_5_C_II, "spells"),
        _m(
            f"{name}_by_group.{{list}}.{{group}}",
            DURATION,
            "the same within each group",
            meaning.replace("a wrongful spell", "a wrongful spell of {group} adults"),
            ART_5_C_II,
            "spells",
            "persons",
        ),
    )


WRONGFUL_MEDIAN, WRONGFUL_MEDIAN_BY_GROUP = _duration(
    "wrongful_days_median",
    "median length in days of a wrongful spell on the list (Kaplan-Meier over wrongful spells, "
    "those still running at T censored); null when more than half still run",
    "median days of a wrongful spell on {list} (Kaplan-Meier, censored at T)",
)
WRONGFUL_Q1, WRONGFUL_Q1_BY_GROUP = _duration(
    "wrongful_days_q1",
    "first quartile of the same: a quarter of the wrongful spells ended by then",
    "days by which a quarter of the wrongful spells on {list} ended (Kaplan-Meier)",
)
WRONGFUL_Q3, WRONGFUL_Q3_BY_GROUP = _duration(
    "wrongful_days_q3",
    "third quartile of the same; null when more than a quarter still run at T",
    "days by which three quarters of the wrongful spells on {list} ended (Kaplan-Meier)",
)
WRONGFUL_MEAN, WRONGFUL_MEAN_BY_GROUP = _duration(
    "wrongful_days_mean_restricted",
    "restricted mean length of a wrongful spell: the mean of min(length, τ), τ the longest "
    "wrongful spell seen, from the Kaplan-Meier curve",
    "mean days of a wrongful spell on {list}, at least: spells still running count as ending "
    "at {tau} days (Kaplan-Meier)",
)
SPILLOVER_SHARE = _m(
    "spillover_share.{list}",
    SPILL,
    "share of the list's [days under a sanction](#days-under-a-sanction) imposed in a context "
    "unrelated to the records that caused the listing",
    "days under a {list} sanction imposed in a context unrelated to that of the records that "
    "caused the listing (scenario audit.related_contexts)",
    ART_5_C_I,
    "spells",
    "records",
)
GRAVITY_SEVERITY = _m(
    "gravity_severity_rank_correlation",
    SPILL,
    "Spearman correlation between a behaviour's gravity and the days under a sanction its "
    "records bring (near 1: graver is punished harder)",
    "Spearman correlation of a behaviour's gravity with the days under a sanction its records "
    "bring (near 1: proportionate ordering)",
    ART_5_C_II,
    "spells",
    "records",
    signed=True,
)
MINOR_ONLY_SHARE = _m(
    "minor_only_share",
    SPILL,
    f"share of sanction-list spells caused only by minor behaviour (gravity 1 or {MINOR_GRAVITY})",
    f"sanction-list spells caused only by minor behaviour (gravity <= {MINOR_GRAVITY})",
    ART_5_C_II,
    "spells",
    "records",
)
CHILDREN_PER_LISTED = _m(
    "children_restricted_per_listed_adult",
    COLLATERAL,
    "children under a child-directed sanction at T, per adult on a child-sanctioning list",
    "children under a child-directed sanction at T per adult on such a list",
    ART_5_C_I,
    "children",
    "persons",
)
CHILDREN_RESTRICTED = _m(
    "children_restricted_share",
    COLLATERAL,
    "children under a child-directed sanction at T (with its count)",
    "children under a child-directed sanction at T",
    ART_5_C_I,
    "children",
)
CHILDREN_EVER = _m(
    "children_ever_restricted_share",
    COLLATERAL,
    "children restricted on at least one day (a parent on a child-sanctioning list of their city)",
    "children under a child-directed sanction on at least one day",
    ART_5_C_I,
    "children",
    "spells",
)
CHILDREN_WRONGLY = _m(
    "children_wrongly_restricted_share",
    COLLATERAL,
    "children restricted on at least one day on which, with only their parents' correct "
    "records, they would not have been",
    "children restricted on at least one day on which, with only their parents' correct "
    "records, they would not have been",
    ART_5_C_I,
    "children",
    "spells",
)
CHILDREN_ONLY_WRONG = _m(
    "children_restricted_only_by_wrong_records_share",
    COLLATERAL,
    "children restricted at some point who, with only their parents' correct records, would "
    "never have been",
    "children restricted at some point who, with only their parents' correct records, would "
    "never have been restricted",
    ART_5_C_I,
    "children",
    "spells",
)
ASSOCIATES = _m(
    "associates_penalised_per_listed_adult",
    COLLATERAL,
    "adults recorded for meeting a blacklisted neighbour, per adult ever blacklisted",
    "adults recorded for meeting someone on {list}, per adult ever on it",
    ART_5_C_I,
    "records",
    "spells",
)
APPEALS_FILED = _m(
    "appeals_filed_per_1000",
    REDRESS,
    "appeals filed per 1,000 adults",
    "appeals filed per 1,000 adults",
    GDPR_22,
    "appeals",
)
APPEALS_UPHELD = _m(
    "appeals_upheld_share",
    REDRESS,
    "share of decided appeals that were upheld",
    "decided appeals that were upheld",
    GDPR_22,
    "appeals",
)
DAYS_TO_REMEDY = _m(
    "days_to_remedy",
    REDRESS,
    "mean days a wrong record stood before an upheld appeal removed it",
    "mean days a wrong record stood before an upheld appeal removed it (victims appeal the day "
    "the record is made, so this is the appeal's decision delay)",
    GDPR_22,
    "appeals",
)
NEVER_CORRECTED = _m(
    "wrong_records_never_corrected",
    REDRESS,
    "share of wrong negative records not removed by an upheld appeal by T",
    "wrong negative records not removed by an upheld appeal by T",
    GDPR_22,
    "records",
    "appeals",
)
NEGATIVE_EVENTS_CHANGE = _m(
    "negative_events_change",
    BEHAVIOUR,
    "relative change in true negative events against the scheme-off world (Poisson interval)",
    "change in true negative events against the same world with the scheme off",
    NECESSITY,
    "behaviour_daily",
    signed=True,
)
SPEECH_CHANGE = _m(
    "online_speech_change",
    BEHAVIOUR,
    "the same for online-speech behaviour: the chilling effect",
    "chilling effect: change in online speech events against the scheme-off world",
    SPEECH,
    "behaviour_daily",
    signed=True,
)
PREVENTED_PER_WRONGLY = _m(
    "events_prevented_per_wrongly_listed",
    BEHAVIOUR,
    "negative events prevented per adult wrongly on a sanction list at T",
    "negative events prevented (against the scheme-off world) per adult wrongly on a sanction "
    "list at T: the behaviour change bought with each innocent listed",
    PROPORTIONALITY,
    "behaviour_daily",
    "persons",
    signed=True,
)

METRICS: tuple[Metric, ...] = (
    LIST_SHARE,
    WRONGLY_LISTED_SHARE,
    WRONGLY_LISTED_OF_LISTED,
    EVER_LISTED_SHARE,
    EVER_WRONGLY_LISTED_SHARE,
    EVER_WRONGLY_BY_GROUP,
    WRONGLY_LISTED_PERSON_DAYS,
    UNDESERVED_SANCTION_PERSON_DAYS,
    FALSE_RECORD_SHARE,
    DETECTION_RATIO,
    MEDIAN_STAY,
    MEAN_STAY,
    STILL_LISTED_1Y,
    SPELLS,
    WRONGFUL_SPELLS,
    WRONGFUL_OPEN,
    WRONGFUL_MEDIAN,
    WRONGFUL_Q1,
    WRONGFUL_Q3,
    WRONGFUL_MEAN,
    WRONGFUL_MEDIAN_BY_GROUP,
    WRONGFUL_Q1_BY_GROUP,
    WRONGFUL_Q3_BY_GROUP,
    WRONGFUL_MEAN_BY_GROUP,
    SPILLOVER_SHARE,
    GRAVITY_SEVERITY,
    MINOR_ONLY_SHARE,
    CHILDREN_PER_LISTED,
    CHILDREN_RESTRICTED,
    CHILDREN_EVER,
    CHILDREN_WRONGLY,
    CHILDREN_ONLY_WRONG,
    ASSOCIATES,
    APPEALS_FILED,
    APPEALS_UPHELD,
    DAYS_TO_REMEDY,
    NEVER_CORRECTED,
    NEGATIVE_EVENTS_CHANGE,
    SPEECH_CHANGE,
    PREVENTED_PER_WRONGLY,
)

# One line per summary metric; `{}` stands for the list, tier, group or city in the key.
SUMMARY_MEANINGS = {
    "mean_score": "mean recorded score at T",
    "tier_share": "share of adults in tier {} at T",
    "list_share": "share of adults on {} at T",
    "ever_listed_share": "share of adults on {} on at least one day",
    "neg_records_per_adult_year": "negative records (all truths) per adult and year",
    "pos_records_per_adult_year": "positive records per adult and year",
    "wrong_record_share": "share of negative records that are misattributed or false reports",
    "wrongly_listed_share": "share of adults wrongly on {} at T (on it, shadow world not)",
    "wrongly_listed_share_by_group": "share of {1} adults wrongly on {0} at T",
    "wrongly_listed_ratio": "minority over majority share wrongly on {} at T",
    "children_restricted_share": "share of children under a child-directed sanction at T",
    "association_records_per_adult_year": "records for meeting a blacklisted neighbour per "
    "adult and year",
    "appeals_filed_per_1000": "appeals filed per 1,000 adults",
    "appeals_upheld_per_1000": "appeals upheld per 1,000 adults",
    "mean_deter": "mean deterrence factor at T (1: none)",
    "tier_share_by_city": "share of adults of city {} in tier {} at T",
    "list_share_by_city": "share of adults of city {} on {} at T",
}


def summary_meaning(key: str, modules: Iterable[ModuleAudit] = ()) -> str:
    """What a summary key means: the longest registered prefix of its dotted parts, its
    template filled with the remaining parts."""
    meanings = dict(SUMMARY_MEANINGS)
    for mod in modules:
        meanings.update(mod.summary_meanings)
    parts = key.split(".")
    for cut in range(len(parts), 0, -1):
        text = meanings.get(".".join(parts[:cut]))
        if text is not None:
            try:
                return text.format(*parts[cut:])
            except IndexError:
                return text
    return "summary metric (docs/model.md)"


# What the docs say under a topic's table.
TOPIC_NOTES = {
    WRONGFUL: '"Wrongly on a sanction list" is an undeserved sanction; "wrongly on a privilege '
    'list" (the whitelist) an undeserved privilege.',
    SPILL: "The causes of a spell: for a list entered by a record, that record; for a "
    "grade-based list, every live negative record on the day the spell began, weighted by its "
    "points.",
    DURATION: "How long wrongly listed people stay wrongly listed. A wrongful spell ends when "
    "the recorded world lets the adult off the list or the shadow world puts them on it; "
    "spells still wrongful at T are censored, so the median and quartiles come from the "
    "Kaplan-Meier curve of wrongful spells, not from the finished spells alone (which would "
    "understate them). The lock-in metrics above cover all listings, rightful or not.",
    BEHAVIOUR: "The audit runs the same world with the scheme switched off (`eta = 0`, "
    "`behaviour_effects: false`, `rho = 0`: no deterrence, distress or association) once per "
    "run directory, in `baseline/`, with the same seed. Positive behaviour draws from streams "
    "of its own and does not respond to the scheme, so it is the same in both worlds.",
}


def metric_tables(metrics: Iterable[Metric], notes: dict[str, str] | None = None) -> str:
    """docs/model.md's metric tables (Markdown), one per topic in declaration order, each
    followed by its note."""
    notes = TOPIC_NOTES if notes is None else notes
    topics: dict[str, list[Metric]] = {}
    for m in metrics:
        topics.setdefault(m.topic, []).append(m)
    out = []
    for topic, rows in topics.items():
        out += [f"### {topic}", "", "| name | definition | maps to | tables |", "|---|---|---|---|"]
        out += [
            f"| `{m.name}` | {m.definition} | {m.docs_maps_to or m.maps_to.short} | "
            f"{', '.join(m.tables)} |"
            for m in rows
        ]
        out += ["", notes[topic], ""] if topic in notes else [""]
    return "\n".join(out)


def module_audits() -> tuple[ModuleAudit, ...]:
    """Every registered module's audit pieces (module.Module.audit), in registry order."""
    found = (spec.runtime_class().audit(spec) for spec in modules.specs())
    return tuple(audit for audit in found if audit is not None)


def member_lines(con: Any, meta: dict[str, Any], kind: str, ident: int) -> list[str]:
    """What each module of a run says about one member of kind `kind`, for `explain`."""
    lines: list[str] = []
    for mod in module_audits():
        if kind in mod.lines and mod.applies(meta):
            lines += mod.lines[kind](con, meta, ident)
    return lines


def adult_lines(con: Any, meta: dict[str, Any], adult: int) -> list[str]:
    """What each module of a run says about one adult."""
    return member_lines(con, meta, "adult", adult)
