"""A sending side and a hub on one machine, with a tiny synthetic city, for the hub's integration tests."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from renkei.hub.catalog import Dataset, Sender, Snapshot
from renkei.hub.home import Hub, init_hub
from renkei.hub.importer import ImportOutcome
from renkei.hub.vault import SnapshotRef
from renkei.manifest import DATA_FILE
from renkei.sending.extract import extract
from renkei.sending.pseudonym import create_key
from renkei.sending.seal import create_sender, trust_hub
from renkei.sending.synth import generate_city
from renkei.spec import bundled_specs, load_spec

SENDER = "kyotsu-kiban"


@dataclass
class World:
    root: Path
    hub: Hub
    sender_home: Path
    raw: dict[dt.date, dict[str, Path]]

    def extract(self, dataset: str, as_of: dt.date, out: str = "out") -> Path:
        spec = load_spec(bundled_specs()[dataset])
        result = extract(spec, self.raw[as_of][dataset], as_of, self.root / out, self.sender_home)
        assert result.package is not None
        return result.package

    def import_(self, package: Path) -> ImportOutcome:
        with self.hub.session() as session:
            importer = self.hub.importer(session)
            return importer.import_package(package)


def make_world(
    root: Path, residents: int = 800, years: int = 2, as_of: dt.date = dt.date(2025, 1, 1)
) -> World:
    hub = init_hub(root / "hub")
    sender_home = root / "sender"
    create_key(sender_home)
    identity = create_sender(sender_home, SENDER)
    trust_hub(sender_home, hub.package_recipient())
    with hub.session() as session:
        session.add(Sender(name=SENDER, public_key=identity.public_key_b64))
        session.commit()
    snaps = generate_city(residents, as_of, root / "raw", seed=3, years=years)
    return World(root, hub, sender_home, {s.as_of: dict(s.paths) for s in snaps})


def store_without_record_keys(hub: Hub, source: SnapshotRef, target: SnapshotRef, work: Path) -> None:
    """Catalogue ``target``: ``source``'s data stored alone, as snapshots were before imports kept their record
    keys (the snapshot verifies on its own; its catalog row expects the keys)."""
    plain = work / f"{target.dataset}-{target.period}-v{target.version}.parquet"
    with hub.vault.open_plain(source, DATA_FILE) as stream:
        plain.write_bytes(stream.read())
    hub.vault.store(target, {DATA_FILE: plain})
    with hub.session() as session:
        first = session.scalars(
            select(Snapshot)
            .join(Dataset)
            .where(Dataset.name == source.dataset, Snapshot.period == source.period)
            .where(Snapshot.version == source.version)
            .options(joinedload(Snapshot.dataset))
        ).one()
        session.add(
            Snapshot(
                dataset_id=first.dataset_id, period=target.period, version=target.version, rows=first.rows,
                bytes=first.bytes, content_sha256=first.content_sha256, spec_hash=first.spec_hash,
                sender_id=first.sender_id, package_id=os.urandom(16).hex(),
            )
        )  # fmt: skip
        session.commit()
