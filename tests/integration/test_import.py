"""受入: sealed packages into the vault; every kind of bad package is rejected, logged, and stores nothing."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import re
import resource
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from renkei.display import is_unsafe
from renkei.hub.audit import CHECKPOINT_COPY_FILE, AuditEntry, read_checkpoint_copies
from renkei.hub.catalog import Dataset, Package, Snapshot, register_dataset
from renkei.hub.home import Hub
from renkei.hub.importer import NoSpaceError, PackageRejectedError, ensure_free_space
from renkei.hub.settings import SETTINGS_FILE
from renkei.hub.staging import import_workspace
from renkei.hub.vault import SnapshotRef
from renkei.manifest import DATA_FILE, MANIFEST_FILE, Manifest, schema_fields, sha256_file
from renkei.package import (
    ENVELOPE,
    MAX_PAYLOAD_BYTES,
    PACKAGE_SUFFIX,
    PAYLOAD,
    SIGNATURE,
    Envelope,
    add_bytes,
)
from renkei.sending.seal import create_sender, load_sender, seal
from renkei.spec import bundled_specs, load_spec
from tests.integration.hub_world import World, make_world

AS_OF = dt.date(2025, 1, 1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("world"))


def snapshot_count(world: World) -> int:
    with world.hub.session() as session:
        return session.scalar(select(func.count()).select_from(Snapshot)) or 0


def last_audit(world: World) -> AuditEntry:
    return world.hub.audit.tail(1)[0]


def rewrite_package(src: Path, dst: Path, **replace: bytes) -> Path:
    """Copy a package, replacing some members' bytes (tampering as an attacker on the path would)."""
    with tarfile.open(src, "r:") as tin, tarfile.open(dst, "w") as tout:
        for info in tin.getmembers():
            f = tin.extractfile(info)
            assert f is not None
            add_bytes(tout, info.name, replace.get(info.name, f.read()))
    return dst


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:") as tar:
        return {i.name: tar.extractfile(i).read() for i in tar.getmembers()}  # type: ignore[union-attr]


def test_import_stores_catalogs_and_logs(world: World) -> None:
    package = world.extract("kaigo", AS_OF, out="ok")
    outcome = world.import_(package)
    assert outcome.status == "imported" and outcome.resource == "kaigo/2025-01-01/v1"
    assert world.hub.vault.exists(SnapshotRef("kaigo", AS_OF, 1))
    with world.hub.session() as session:
        snap = session.scalar(select(Snapshot).join(Dataset).where(Dataset.name == "kaigo"))
        assert snap is not None and snap.rows == outcome.rows > 0
    stored, assessed = world.hub.audit.tail(2)
    assert (stored.action, stored.resource, stored.result) == ("import", "kaigo/2025-01-01/v1", "ok")
    assert (assessed.action, assessed.resource) == ("import.assess", "kaigo/2025-01-01/v1")  # docs/risk.md
    # a second import of the same package is a no-op
    before = snapshot_count(world)
    again = world.import_(package)
    assert again.status == "already imported" and snapshot_count(world) == before
    assert world.hub.audit.verify().ok


def expect_rejected(world: World, package: Path, reason: str) -> None:
    before = snapshot_count(world)
    vault_before = world.hub.vault.snapshots()
    with pytest.raises(PackageRejectedError, match=reason):
        world.import_(package)
    assert snapshot_count(world) == before
    assert world.hub.vault.snapshots() == vault_before
    entry = last_audit(world)
    assert (entry.action, entry.result) == ("import.rejected", "rejected")
    assert entry.resource == package.name


def test_tampered_payload_is_rejected(world: World, tmp_path: Path) -> None:
    package = world.extract("juki", AS_OF, out="t1")
    payload = bytearray(members(package)[PAYLOAD])
    payload[len(payload) // 2] ^= 0x01
    bad = rewrite_package(package, tmp_path / "bad.rkpkg", **{PAYLOAD: bytes(payload)})
    expect_rejected(world, bad, "payload hash")


def test_tampered_envelope_breaks_the_signature(world: World, tmp_path: Path) -> None:
    package = world.extract("juki", AS_OF, out="t2")
    envelope = json.loads(members(package)[ENVELOPE])
    envelope["as_of"] = "2024-01-01"
    bad = rewrite_package(package, tmp_path / "bad.rkpkg", **{ENVELOPE: json.dumps(envelope).encode()})
    expect_rejected(world, bad, "signature does not verify")


def test_unsigned_package_is_rejected(world: World, tmp_path: Path) -> None:
    package = world.extract("juki", AS_OF, out="t3")
    bad = rewrite_package(package, tmp_path / "bad.rkpkg", **{SIGNATURE: b""})
    expect_rejected(world, bad, "signature does not verify")


def test_package_signed_by_an_unregistered_key_is_rejected(world: World, tmp_path: Path) -> None:
    package = world.extract("juki", AS_OF, out="t4")
    impostor = create_sender(tmp_path / "impostor", "kyotsu-kiban")
    body = members(package)[ENVELOPE]
    forged = base64.b64encode(impostor.signing_key.sign(body))
    bad = rewrite_package(package, tmp_path / "bad.rkpkg", **{SIGNATURE: forged})
    expect_rejected(world, bad, "signature does not verify")


def test_unknown_sender_is_rejected(world: World, tmp_path: Path) -> None:
    package = world.extract("juki", AS_OF, out="t5")
    stranger = create_sender(tmp_path / "stranger", "stranger")
    envelope = Envelope.model_validate_json(members(package)[ENVELOPE]).model_copy(
        update={"sender": "stranger"}
    )
    body = envelope.to_bytes()
    bad = rewrite_package(
        package,
        tmp_path / "bad.rkpkg",
        **{ENVELOPE: body, SIGNATURE: base64.b64encode(stranger.signing_key.sign(body))},
    )
    expect_rejected(world, bad, "unknown sender")


def test_not_a_package(world: World, tmp_path: Path) -> None:
    junk = tmp_path / "junk.rkpkg"
    junk.write_bytes(b"this is not a tar file at all" * 100)
    expect_rejected(world, junk, "not a sealed package")


def test_package_for_another_hub_does_not_decrypt(world: World, tmp_path: Path) -> None:
    other = make_world(tmp_path / "other", residents=200, years=1)
    package = other.extract("kaigo", AS_OF)
    # the other sender is registered here under the same name but a different key: re-sign as our sender
    ours = load_sender(world.sender_home)
    body = members(package)[ENVELOPE]
    bad = rewrite_package(
        package, tmp_path / "bad.rkpkg", **{SIGNATURE: base64.b64encode(ours.signing_key.sign(body))}
    )
    expect_rejected(world, bad, "does not decrypt")


def test_same_content_in_a_new_package_is_a_replay(world: World) -> None:
    first = world.extract("seikatsu_hogo", AS_OF, out="r1")
    world.import_(first)
    replay = world.extract("seikatsu_hogo", AS_OF, out="r2")
    expect_rejected(world, replay, "replay")


def forge_extract(world: World, tmp_path: Path, dataset: str, change: str) -> Path:
    """Build a package signed by the real sender whose content breaks one manifest rule."""
    spec = load_spec(bundled_specs()[dataset])
    good = world.extract(dataset, AS_OF, out=f"forge-{change}").with_suffix("")
    src = good.parent / good.name
    work = tmp_path / change
    shutil.copytree(src, work)
    manifest = Manifest.from_json((work / MANIFEST_FILE).read_text(encoding="utf-8"))
    table = pq.read_table(work / DATA_FILE)
    updates: dict[str, object] = {}
    if change == "deleted-column":
        table = table.append_column("氏名", pa.array(["山田　太郎"] * table.num_rows))
    elif change == "row-count":
        updates["rows_out"] = manifest.rows_out + 1
    elif change == "spec-hash":
        updates["spec_hash"] = "0" * 64
    if change != "row-count" and change != "spec-hash":
        pq.write_table(table, work / DATA_FILE)
        updates |= {"schema": schema_fields(table.schema)}
    updates |= {
        "content_sha256": sha256_file(work / DATA_FILE),
        "data_bytes": (work / DATA_FILE).stat().st_size,
    }
    data = manifest.model_dump(by_alias=True) | updates
    manifest = Manifest.model_validate(data)
    (work / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
    assert spec.dataset == manifest.dataset
    return seal(
        work,
        manifest,
        load_sender(world.sender_home),
        world.hub.package_recipient(),
        tmp_path / f"{change}.rkpkg",
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [("deleted-column", "deleted column"), ("row-count", "row count"), ("spec-hash", "spec hash")],
)
def test_manifest_mismatches_are_rejected(world: World, tmp_path: Path, change: str, reason: str) -> None:
    expect_rejected(world, forge_extract(world, tmp_path, "kokuho", change), reason)


def test_spec_changed_on_the_hub_rejects_old_spec_packages(tmp_path: Path) -> None:
    world = make_world(tmp_path, residents=200, years=1)
    spec = load_spec(bundled_specs()["kaigo"])
    changed = spec.model_copy(update={"description": "changed"}, deep=True)
    changed = type(spec).model_validate(
        changed.model_dump()
        | {"columns": {**changed.model_dump()["columns"], "認定日": {"role": "date", "coarsen": "year"}}}
    )
    with world.hub.session() as session:
        register_dataset(session, changed)
        session.commit()
    expect_rejected(world, world.extract("kaigo", AS_OF), "spec hash")


def test_a_correction_is_a_new_version_and_the_old_stays_readable(tmp_path: Path) -> None:
    world = make_world(tmp_path, residents=300, years=1)
    world.import_(world.extract("kaigo", AS_OF, out="a"))
    source = world.raw[AS_OF]["kaigo"]
    lines = source.read_bytes().split(b"\r\n")
    source.write_bytes(b"\r\n".join([*lines[:-3], b""]))  # the core system corrected its export
    outcome = world.import_(world.extract("kaigo", AS_OF, out="b"))
    assert outcome.resource == "kaigo/2025-01-01/v2"
    refs = [r for r in world.hub.vault.snapshots("kaigo")]
    assert [r.version for r in refs] == [1, 2]
    with world.hub.vault.open_plain(SnapshotRef("kaigo", AS_OF, 1), DATA_FILE) as f:
        v1 = pq.read_table(io.BytesIO(f.read()))
    with world.hub.vault.open_plain(SnapshotRef("kaigo", AS_OF, 2), DATA_FILE) as f:
        v2 = pq.read_table(io.BytesIO(f.read()))
    assert v1.num_rows == v2.num_rows + 2
    with world.hub.session() as session:
        assert session.scalar(select(func.count()).select_from(Package)) == 2
    assert world.hub.vault.verify() == [] and world.hub.audit.verify().ok


def test_no_raw_value_reaches_the_hub(tmp_path: Path) -> None:
    """Checklist 32: canary identifiers in the raw export appear nowhere under the hub's home, decrypted or not."""
    world = make_world(tmp_path, residents=300, years=1)
    source = world.raw[AS_OF]["juki"]
    raw = pa.csv.read_csv(
        source,
        read_options=pa.csv.ReadOptions(encoding="cp932"),
        convert_options=pa.csv.ConvertOptions(
            column_types={"個人番号": pa.string(), "氏名": pa.string(), "宛名番号": pa.string()}
        ),
    )
    canaries = {
        raw.column("個人番号")[0].as_py(),
        raw.column("氏名")[0].as_py(),
        raw.column("宛名番号")[0].as_py(),
    }
    world.import_(world.extract("juki", AS_OF))
    blobs = [p.read_bytes() for p in world.hub.home.rglob("*") if p.is_file()]
    with world.hub.vault.open_plain(SnapshotRef("juki", AS_OF, 1), DATA_FILE) as f:
        plain = pq.read_table(io.BytesIO(f.read()))
    blobs.append(json.dumps(plain.to_pylist(), ensure_ascii=False, default=str).encode())
    for canary in canaries:
        assert all(canary.encode() not in blob for blob in blobs)


# --- bounded before authentication --------------------------------------------------------------------------

GIB = 1 << 30


def octal12(n: int) -> bytes:
    return b"%011o\0" % n


def gnu_sparse_member(name: str, realsize: int, data: bytes) -> bytes:
    """An old-style GNU sparse member: ``data`` at offset 0, then a hole up to ``realsize``."""
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = tarfile.GNUTYPE_SPARSE, len(data), 0o400
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    entries = [(0, len(data))] + [(realsize, 0)] * 3
    for i, (offset, size) in enumerate(entries):
        pos = 386 + 24 * i
        header[pos : pos + 12] = octal12(offset)
        header[pos + 12 : pos + 24] = octal12(size)
    header[483:495] = octal12(realsize)
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % sum(header)  # the checksum counts its own field as spaces
    return bytes(header) + data + b"\0" * (-len(data) % 512)


def pax_sparse_member(name: str, realsize: int, data: bytes) -> bytes:
    """A PAX (GNU 1.0) sparse member: the map in the data, the real size in the extended header."""
    sparse_map = b"1\n0\n%d\n" % len(data)
    body = sparse_map + b"\0" * (-len(sparse_map) % 512) + data
    info = tarfile.TarInfo(f"GNUSparseFile.0/{name}")
    info.size, info.mode = len(body), 0o400
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": name,
        "GNU.sparse.realsize": str(realsize),
    }
    return info.tobuf(tarfile.PAX_FORMAT) + body + b"\0" * (-len(body) % 512)


def signed_head(world: World, package: Path, **envelope_changes: object) -> bytes:
    """The envelope and a valid signature by the registered sender, as tar members."""
    envelope = Envelope.model_validate_json(members(package)[ENVELOPE]).model_copy(update=envelope_changes)
    body = envelope.to_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, ENVELOPE, body)
        add_bytes(tar, SIGNATURE, base64.b64encode(load_sender(world.sender_home).signing_key.sign(body)))
    return _members_only(buf.getvalue())


def _members_only(archive: bytes) -> bytes:
    """The archive without its end-of-archive blocks (and the padding after them), to append more members."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        end = max(i.offset_data + i.size + (-i.size % 512) for i in tar.getmembers())
    return archive[:end]


def run_cli_import(
    world: World, package: Path, tmpdir: Path, max_file: int
) -> subprocess.CompletedProcess[str]:
    """``renkei import`` in a process that cannot write any file larger than ``max_file`` bytes."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file, max_file))

    cmd = [sys.executable, "-m", "renkei.cli.main", "import", str(package), "--home", str(world.hub.home)]
    env = os.environ | {"TMPDIR": str(tmpdir)}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, preexec_fn=limit, check=False)


@pytest.mark.parametrize("member", [gnu_sparse_member, pax_sparse_member])
def test_a_sparse_member_is_refused_before_anything_is_written(
    world: World, tmp_path: Path, member: Callable[[str, int, bytes], bytes]
) -> None:
    """A 10 KiB package declaring a 1 GiB sparse payload, even with a valid signature, writes nothing large."""
    package = world.extract("juki", AS_OF, out=f"sparse-{member.__name__}")
    bomb = tmp_path / "bomb.rkpkg"
    bomb.write_bytes(
        signed_head(world, package, payload_bytes=GIB) + member(PAYLOAD, GIB, b"x" * 512) + bytes(1024)
    )
    assert bomb.stat().st_size <= 10 << 10
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    result = run_cli_import(world, bomb, tmpdir, max_file=16 << 20)
    assert result.returncode == 4, (result.returncode, result.stderr)
    assert "sparse member 'payload.age'" in result.stderr
    largest = max(p.stat().st_size for p in [*world.hub.home.rglob("*"), *tmpdir.rglob("*")] if p.is_file())
    assert largest < 16 << 20
    entry = last_audit(world)
    assert (entry.action, entry.resource) == ("import.rejected", "bomb.rkpkg")


def tar_with(head: bytes, *infos: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in infos:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return head + buf.getvalue()


def special(kind: bytes, name: str = PAYLOAD) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
    return info, b""


def plain(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("symlink", "not a plain file"),
        ("hardlink", "not a plain file"),
        ("fifo", "not a plain file"),
        ("device", "not a plain file"),
        ("directory", "not a plain file"),
        ("duplicate", "duplicate member 'payload.age'"),
        ("extra", "unexpected member 'notes.txt'"),
        ("missing", "missing members"),
    ],
)
def test_links_devices_duplicates_and_strangers_are_refused(
    world: World, tmp_path: Path, case: str, reason: str
) -> None:
    package = world.extract("juki", AS_OF, out=f"member-{case}")
    payload = members(package)[PAYLOAD]
    head = signed_head(world, package)
    kinds = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE}
    kinds |= {"device": tarfile.CHRTYPE, "directory": tarfile.DIRTYPE}
    if case in kinds:
        infos = [special(kinds[case])]
    elif case == "duplicate":
        infos = [plain(PAYLOAD, payload), plain(PAYLOAD, payload)]
    elif case == "extra":
        infos = [plain(PAYLOAD, payload), plain("notes.txt", b"hello")]
    else:
        infos = []
    bad = tmp_path / "bad.rkpkg"
    bad.write_bytes(tar_with(head, *infos))
    expect_rejected(world, bad, reason)


def test_the_payload_must_have_the_size_the_signed_envelope_declares(world: World, tmp_path: Path) -> None:
    package = world.extract("juki", AS_OF, out="declared-size")
    payload = members(package)[PAYLOAD]
    bad = tmp_path / "bad.rkpkg"
    bad.write_bytes(
        tar_with(signed_head(world, package, payload_bytes=len(payload) - 1), plain(PAYLOAD, payload))
    )
    expect_rejected(world, bad, "payload size does not match the envelope")


def test_a_payload_beyond_the_ceiling_is_refused_even_when_signed(world: World, tmp_path: Path) -> None:
    package = world.extract("juki", AS_OF, out="ceiling")
    bad = tmp_path / "bad.rkpkg"
    huge = MAX_PAYLOAD_BYTES + 1
    bad.write_bytes(tar_with(signed_head(world, package, payload_bytes=huge), plain(PAYLOAD, b"x")))
    expect_rejected(world, bad, "exceeds the ceiling|too large")


def test_the_hubs_setting_lowers_the_ceiling(world: World) -> None:
    """imports.max_payload_bytes in hub.toml: a genuine package over it is refused, and nothing is stored."""
    package = world.extract("juki", AS_OF, out="lowered")
    payload = len(members(package)[PAYLOAD])
    settings = world.hub.home / SETTINGS_FILE
    settings.write_text(f"[imports]\nmax_payload_bytes = {payload - 1}\n", encoding="utf-8")
    try:
        lowered = World(world.root, Hub(world.hub.home), world.sender_home, world.raw)
        assert lowered.hub.settings.imports.max_payload_bytes == payload - 1
        expect_rejected(lowered, package, "exceeds the ceiling|too large")
    finally:
        settings.unlink()


def test_free_space_is_checked_before_writing(tmp_path: Path) -> None:
    ensure_free_space(tmp_path, 1 << 20)
    with pytest.raises(NoSpaceError, match="not enough free space"):
        ensure_free_space(tmp_path, shutil.disk_usage(tmp_path).free)


def test_every_import_signs_a_checkpoint_kept_in_the_home(world: World, tmp_path: Path) -> None:
    copies = world.hub.home / CHECKPOINT_COPY_FILE
    junk = tmp_path / "junk.rkpkg"
    junk.write_bytes(b"junk")
    with pytest.raises(PackageRejectedError):
        world.import_(junk)
    assert read_checkpoint_copies(copies).checkpoints[-1].size == world.hub.audit.size()
    world.import_(world.extract("kojin_juminzei", AS_OF, out="signed"))
    assert read_checkpoint_copies(copies).checkpoints[-1].size == world.hub.audit.size()
    report = world.hub.audit.verify()
    assert report.ok and report.covered == report.size and report.warnings == ()


# --- plaintext stays in the hub's own staging ------------------------------------------------------------------


def test_an_import_sweeps_leftovers_and_never_uses_the_system_temp(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = world.extract("kokuho", AS_OF, out="staging")
    staging = world.hub.staging
    leftover = staging / "import-killed"  # what a killed import leaves: decrypted data
    leftover.mkdir(parents=True, exist_ok=True)
    (leftover / DATA_FILE).write_bytes(b"plaintext of a killed import")
    (leftover / MANIFEST_FILE).write_bytes(b"{}")
    not_a_dir = tmp_path / "system-temp"
    not_a_dir.write_text("")  # nothing can be created under a regular file
    monkeypatch.setattr(tempfile, "tempdir", str(not_a_dir))
    outcome = world.import_(package)
    assert outcome.status == "imported"
    assert not leftover.exists()
    assert sorted(p.name for p in staging.iterdir()) == [".lock", "locks"]  # the locks: renkei.hub.storing
    assert stat.S_IMODE(staging.stat().st_mode) == 0o700


def test_a_hub_start_sweeps_a_killed_imports_files_but_never_a_running_ones(world: World) -> None:
    staging = world.hub.staging
    staging.mkdir(mode=0o700, exist_ok=True)
    killed = staging / "import-killed"  # what a killed import leaves: decrypted data, its lock released
    killed.mkdir(mode=0o700)
    (killed / DATA_FILE).write_bytes(b"plaintext of a killed import")
    Hub(world.hub.home)  # a start (any command, the portal)
    assert not killed.exists()
    assert Hub(world.hub.home).staging == staging  # nothing to sweep: a start with nothing left works too
    with import_workspace(staging) as live:  # a running import holds the staging lock shared
        (live / DATA_FILE).write_bytes(b"plaintext of a running import")
        killed.mkdir(mode=0o700)  # and a dead one's beside it: left for a start when no import runs
        Hub(world.hub.home)
        assert (live / DATA_FILE).exists() and killed.exists()
    Hub(world.hub.home)
    assert not killed.exists() and not live.exists()
    assert {p.name for p in staging.iterdir()} <= {".lock", "locks"}


# A file name an attacker who can drop files in the inbox might choose: Rich markup, a screen clear, a window
# title, a C1 CSI, bidi overrides, a NEL and a newline followed by a forged line of output.
HOSTILE = "[green]OK[reverse] \x1b[2J\x1b]0;pwned\x07\x9b31m\u202egpj.exe\u2066\x85\n受入 (imported): forged"
SGR = re.compile(r"\x1b\[[0-9;]*m")  # the console's own colours: the only escape sequences allowed


def test_hostile_file_names_cannot_forge_the_terminal_output(world: World, tmp_path: Path) -> None:
    """Issue 9, item 7: ``renkei import`` on a colour terminal, with names made to forge what it prints."""
    accepted = tmp_path / f"{HOSTILE} 1{PACKAGE_SUFFIX}"
    shutil.copy(world.extract("jido_teate", AS_OF, out="hostile"), accepted)
    refused = tmp_path / f"{HOSTILE} 2{PACKAGE_SUFFIX}"
    refused.write_bytes(b"not a package")
    cmd = [sys.executable, "-m", "renkei.cli.main", "import", str(accepted), str(refused)]
    env = os.environ | {"FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "1000"}
    result = subprocess.run(
        [*cmd, "--home", str(world.hub.home)], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == PackageRejectedError.exit_code, result.stderr
    for stream, lines in ((result.stdout, 1), (result.stderr, 2)):
        plain = SGR.sub("", stream)
        assert SGR.search(stream) is not None  # it is a colour terminal: styles are sent as escapes
        assert [c for c in plain if is_unsafe(c) and c != "\n"] == []
        assert plain.count("\n") == lines, plain  # no line forged
        assert (
            "[green]OK[reverse] \\u001b[2J\\u001b]0;pwned\\u0007\\u009b31m\\u202egpj.exe\\u2066\\u0085\\u000a"
            in plain
        )
    assert SGR.sub("", result.stdout).startswith("受入 (imported): jido_teate/")
    assert "拒否 (rejected):" in SGR.sub("", result.stderr)
