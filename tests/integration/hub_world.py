"""A sending side and a hub on one machine, with a tiny synthetic city, for the hub's integration tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from renkei.hub.catalog import Sender
from renkei.hub.home import Hub, init_hub
from renkei.hub.importer import ImportOutcome
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
