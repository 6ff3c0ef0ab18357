"""The synthetic city (``renkei synth``): CP932 extracts of a fictional Kobe-like city's core systems.

:func:`generate_city` writes one folder per annual snapshot with the six datasets of ``renkei/specs``. The
population is calibrated to Kobe's published 住民基本台帳 figures (see ``docs/synthetic-city.md``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from renkei.sending.synth.city import build_city
from renkei.sending.synth.datasets import BUILDERS, COLUMNS, DATASETS, Snapshot
from renkei.sending.synth.evolve import advance
from renkei.sending.synth.population import years_before
from renkei.sending.synth.rng import Rng
from renkei.sending.synth.writer import write_csv

__all__ = ["COLUMNS", "DATASETS", "SnapshotFiles", "generate_city", "snapshot_dates"]

MIN_RESIDENTS = 1


@dataclass(frozen=True)
class SnapshotFiles:
    """The files of one annual snapshot: dataset → CSV path, and dataset → number of data rows."""

    as_of: dt.date
    paths: dict[str, Path]
    rows: dict[str, int]


def snapshot_dates(as_of: dt.date, years: int) -> list[dt.date]:
    """``years`` dates one year apart, oldest first, the last on ``as_of`` (2月29日 → 2月28日)."""
    return [years_before(as_of, k) for k in range(years - 1, -1, -1)]


def generate_city(
    residents: int,
    as_of: dt.date,
    out_dir: Path,
    *,
    seed: int = 0,
    years: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
    datasets: Collection[str] | None = None,
) -> list[SnapshotFiles]:
    """Write ``out_dir/<YYYY-MM-DD>/<dataset>.csv`` for each snapshot; the same seed gives identical bytes.

    The first snapshot's population matches the published per-ward, per-sex, 5-year-band 住基 counts scaled to
    ``residents``; later snapshots follow the same people as they age, move, are born and die.
    ``datasets`` limits which extracts are written (all six by default). ``progress(stage, done, total)`` is
    called with the stages ``population``, ``ageing`` and ``<YYYY-MM-DD> <dataset>`` (rows written).
    """
    if residents < MIN_RESIDENTS:
        raise ValueError(f"residents must be at least {MIN_RESIDENTS}, got {residents}")
    if years < 1:
        raise ValueError(f"years must be at least 1, got {years}")
    selected = DATASETS if datasets is None else tuple(d for d in DATASETS if d in set(datasets))
    unknown = set(datasets or ()) - set(DATASETS)
    if unknown:
        raise ValueError(f"unknown datasets {sorted(unknown)}; known: {', '.join(DATASETS)}")

    def report(stage: str, done: int, total: int) -> None:
        if progress:
            progress(stage, done, total)

    rng = Rng(seed)
    dates = snapshot_dates(as_of, years)
    report("population", 0, 1)
    city = build_city(rng.child("city"), residents, dates[0])
    report("population", 1, 1)
    snapshots = []
    for year, date in enumerate(dates):
        if year:
            report("ageing", year - 1, years - 1)
            city = advance(city, rng.child(f"year{year}"), date)
            report("ageing", year, years - 1)
        folder = out_dir / date.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        snapshot = Snapshot(city, rng.child("extract"))
        paths, rows = {}, {}
        for name in selected:
            table = BUILDERS[name](snapshot)
            path = folder / f"{name}.csv"
            write_csv(table, path, stage=f"{date} {name}", progress=progress)
            paths[name], rows[name] = path, table.num_rows
        snapshots.append(SnapshotFiles(as_of=date, paths=paths, rows=rows))
    return snapshots
