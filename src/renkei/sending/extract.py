"""``renkei extract``: one raw export in, one pseudonymized dataset (Parquet + manifest) out, atomically.

The output is built in a hidden temporary directory inside DIR and renamed into place only when complete, so
after any error (bad input, a leftover identifier, a full disk, Ctrl-C) nothing is left in DIR.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from renkei import __version__
from renkei.errors import InputError, Location, RenkeiError
from renkei.files import fsync_dir, fsync_file
from renkei.manifest import DATA_FILE, MANIFEST_FILE, ColumnTreatment, Manifest, schema_fields, sha256_file
from renkei.sending.pseudonym import Pseudonymizer, load_key
from renkei.sending.read import CsvHeader, iter_batches, read_header
from renkei.sending.seal import hub_recipient, load_sender, package_name, seal
from renkei.sending.transform import Transformer
from renkei.spec import DatasetSpec, Role
from renkei.threaded_stages import prefetch

Progress = Callable[[int, int], None]
_UNREAD_ROLES = frozenset({Role.NAME, Role.IDENTIFIER, Role.DROP})  # deleted without reading a value


@dataclass(frozen=True, slots=True)
class ExtractResult:
    directory: Path
    manifest: Manifest
    package: Path | None  # the sealed package for the hub, when a hub is trusted


def check_columns(spec: DatasetSpec, header: CsvHeader, path: Path) -> None:
    """Default deny: every column in the file must be declared, and every declared column present."""
    undeclared = [c for c in header.columns if c not in spec.columns]
    missing = [c for c in spec.columns if c not in header.columns]
    where = Location(path, 1)
    if undeclared:
        names = "、".join(undeclared)
        raise InputError(
            f"仕様にない列があります（既定で拒否）: {names}。仕様に役割を書いてください",
            f"columns not declared in the spec (default deny): {undeclared}",
            where,
        )
    if missing:
        names = "、".join(missing)
        raise InputError(
            f"仕様にある列がファイルにありません: {names}",
            f"declared columns missing from the file: {missing}",
            where,
        )


def open_source(spec: DatasetSpec, path: Path, progress: Progress | None = None) -> Iterator[pa.RecordBatch]:
    """Check the header against the spec, then stream the rows.

    Columns whose role deletes them (氏名, 個人番号, 方書 …) are decoded and parsed with the rest but not
    converted into the batches: no rule reads them.
    """
    header = read_header(path, spec.encoding)
    check_columns(spec, header, path)
    used = [name for name, col in spec.columns.items() if col.role not in _UNREAD_ROLES]
    return iter_batches(path, spec.encoding, header, on_progress=progress, columns=used)


def output_name(spec: DatasetSpec, as_of: dt.date) -> str:
    return f"{spec.dataset}_{as_of.isoformat()}"


def extract(
    spec: DatasetSpec,
    source: Path,
    as_of: dt.date,
    out_dir: Path,
    home: Path,
    progress: Progress | None = None,
) -> ExtractResult:
    """Pseudonymize ``source`` by ``spec`` into ``out_dir/<dataset>_<as_of>/``.

    When the sending side trusts a hub, the result is also sealed into ``out_dir/<dataset>_<as_of>.rkpkg``.
    """
    final = out_dir / output_name(spec, as_of)
    package = out_dir / package_name(spec.dataset, as_of)
    for existing in (final, package):
        if existing.exists():
            raise RenkeiError(
                "同じデータセット・基準日の出力が既にあります（上書きしません）",
                "output for this dataset and as-of date already exists; not overwriting",
                Location(existing),
            )
    key = load_key(home)
    recipient = hub_recipient(home)
    sender = load_sender(home) if recipient is not None else None
    batches = open_source(spec, source, progress)
    created_dir = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=out_dir))
    try:
        manifest = _write(spec, as_of, Transformer(spec, as_of, Pseudonymizer(key)), batches, work)
        if sender is not None and recipient is not None:
            sealed = seal(work, manifest, sender, recipient, work / package.name)
            fsync_file(sealed)
            sealed.rename(package)
        fsync_dir(work)
        work.rename(final)
        fsync_dir(out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if sender is not None and not final.exists():
            package.unlink(missing_ok=True)
        if created_dir and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    return ExtractResult(final, manifest, package if sender is not None else None)


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector while the rows stream.

    The rules create millions of short-lived, acyclic objects (the distinct values read in Python, their
    cached results), which set off collections that walk the growing caches again and again (about 4% of
    the extract's CPU). Reference counting still frees them; the collector resumes afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _write(
    spec: DatasetSpec,
    as_of: dt.date,
    transformer: Transformer,
    batches: Iterator[pa.RecordBatch],
    work: Path,
) -> Manifest:
    data = work / DATA_FILE
    with pq.ParquetWriter(data, spec.output_schema, compression="zstd") as writer, _no_cycle_collection():
        # reading, the rules and writing overlap on separate threads (docs/benchmarks.md)
        for batch in prefetch(transformer.transform_all(prefetch(batches))):
            writer.write_batch(batch)
    fsync_file(data)
    counts = transformer.counts
    manifest = Manifest(
        dataset=spec.dataset,
        title=spec.title,
        owner=spec.owner,
        as_of=as_of,
        rows_in=counts.rows_in,
        rows_out=counts.rows_out,
        counts=counts.as_dict(),
        schema=schema_fields(spec.output_schema),
        columns=[ColumnTreatment(**c) for c in spec.column_dictionary()],
        spec_hash=spec.spec_hash,
        tool=f"renkei {__version__}",
        data_bytes=data.stat().st_size,
        content_sha256=sha256_file(data),
        created_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
    )
    (work / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
    fsync_file(work / MANIFEST_FILE)
    return manifest
