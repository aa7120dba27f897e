"""How much memory a run needs, checked before anything is allocated.

The figures are peak resident memory measured on R1 (30 and 90 days written to disk, 1 M to
4 M adults; docs/performance.md, "Memory a run needs"), rounded up: a run needs about FIXED,
plus PER_ADULT for each adult, PER_EDGE more per adult for each unit of `edges_per_adult`,
PER_CHILD per child and, when the tables are kept in memory (the Python API without `out`),
PER_RECORD per record. The estimate is compared with the memory the system says is
available (MemAvailable, and the cgroup's limit where one is set); a run that cannot fit is
refused with the estimate and the largest size that fits.
"""

from __future__ import annotations

from pathlib import Path

from xinyong import modules
from xinyong.errors import XinyongError
from xinyong.scenario import Scenario

GIB = 1 << 30
FIXED = GIB // 2  # libraries, compiled kernels, write buffers (0.16 GiB of it at import)
PER_ADULT = 120  # state (118 bytes) less what edges cost, plus temporaries and records in flight
# Per adult and unit of edges_per_adult: the graph and its building (proposals, the incoming
# pairs and the rows at once). Measured at 1,000 edges per adult: 28 bytes more per unit from
# 20 k to 150 k adults (peaks 856, 1,918 and 4,340 MiB at 20 k, 60 k and 150 k adults).
PER_EDGE = 32
PER_CHILD = 32  # 16 bytes measured at 20 M children, 28 at 20 to 60 M
PER_RECORD = 44  # a record kept in memory as Arrow columns (no out directory)


def estimate(sc: Scenario, *, in_memory: bool = False) -> int:
    """Peak bytes one run of `sc` needs (an upper estimate)."""
    pop = sc.population
    per_adult = PER_ADULT + PER_EDGE * pop.edges_per_adult + PER_CHILD * pop.child_ratio
    if in_memory:
        per_adult += PER_RECORD * records_per_adult(sc)
    for _, spec in modules.active(sc):  # what each module adds (module.Spec)
        if spec.memory_per_adult is not None:
            per_adult += spec.memory_per_adult(sc)
    return int(FIXED + sc.adults * per_adult)


def records_per_adult(sc: Scenario) -> float:
    """Records an adult can expect over the run: every behaviour at its base rate, seen by
    its channel (risk and civic traits average 1; deterrence only lowers it)."""
    daily = sum(b.base * sc.channels[b.channel].detect for b in sc.behaviours.values())
    daily += sc.observation.false_report_rate
    return daily * sc.days


def available() -> int | None:
    """Memory the system can give this process now, or None where it does not say."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    limit = _cgroup_room()
    if limit is not None:
        avail = limit if avail is None else min(avail, limit)
    return avail


def _cgroup_room() -> int | None:
    """What the cgroup (v2) limit leaves, for a run in a container."""
    try:
        rel = Path("/proc/self/cgroup").read_text().strip().split("::", 1)[1]
        base = Path("/sys/fs/cgroup") / rel.lstrip("/")
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((base / "memory.current").read_text())
    except (OSError, ValueError, IndexError):
        return None


def check_size(
    sc: Scenario, *, in_memory: bool = False, at_once: int = 1, force: bool = False
) -> None:
    """Refuse, before any allocation, a run (or `at_once` runs side by side) that needs more
    memory than is available; `force` tries anyway."""
    if force:
        return
    need = estimate(sc, in_memory=in_memory) * at_once
    avail = available()
    if avail is None or need <= avail:
        return
    per = (estimate(sc, in_memory=in_memory) - FIXED) / sc.adults
    fits = max(int((avail / at_once - FIXED) / per), 0)
    what = f"{at_once} runs of {sc.adults:,} adults" if at_once > 1 else f"{sc.adults:,} adults"
    raise XinyongError(
        f"{what} need about {need / GIB:,.1f} GiB of memory and {avail / GIB:,.1f} GiB are "
        f"available; at most about {fits:,} adults fit (--force to try anyway)",
        field="population.adults",
    )
