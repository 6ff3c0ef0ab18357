"""Spec + batches of raw text → pseudonymized batches + counts per rule.

Each rule is a vectorized function over a whole column of a batch (see the modules it calls). This module only
wires them to the roles of the spec, in spec order, and counts what each rule did. A column that could hold
personal data after its rule (every kept text column) is scanned for identifier-shaped values; any hit stops
the extract.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from renkei.errors import LeftoverIdentifierError
from renkei.identifiers import LEFTOVER_LABELS_JA, LeftoverHit, scan_leftovers
from renkei.sending.address import truncate_addresses
from renkei.sending.birthdate import ages
from renkei.sending.dates import coarsen_dates, parse_dates
from renkei.sending.pseudonym import Pseudonymizer, PseudonymResult
from renkei.spec import ColumnSpec, DatasetSpec, Role

_INTEGER = r"^[+-]?[0-9]+$"
_Counts = list[tuple[str, int]]
_Keyed = dict[str, Future[PseudonymResult]]


def _date_counts(invalid: int, blank: int, total: int) -> _Counts:
    return [("valid", total - invalid - blank), ("invalid", invalid), ("blank", blank)]


@dataclass
class ExtractCounts:
    """Rows in and out, and per source column how many rows each rule outcome applied to."""

    rows_in: int = 0
    rows_out: int = 0
    rules: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    leftovers: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, column: str, outcome: str, rows: int) -> None:
        if rows:
            self.rules[column][outcome] += rows

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {col: dict(sorted(c.items())) for col, c in self.rules.items()}

    def leftover_hits(self) -> list[LeftoverHit]:
        return [LeftoverHit(column=c, kind=k, rows=n) for (c, k), n in sorted(self.leftovers.items())]


class Transformer:
    """Applies a spec's rules to batches; one instance per extract run."""

    def __init__(self, spec: DatasetSpec, as_of: dt.date, pseudonymizer: Pseudonymizer) -> None:
        self.spec = spec
        self.as_of = as_of
        self.pseudonymizer = pseudonymizer
        self.counts = ExtractCounts()
        # one worker: the Pseudonymizer's DuckDB connection is used by one thread at a time
        self._keyer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="renkei-keyed-ids")

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        return self._finish(batch, self._submit_keyed(batch))

    def transform_all(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """:meth:`transform` of each batch, in order; the keyed IDs of the next batch are computed (on the
        worker thread) while this thread runs the other rules of the current one."""
        pending: tuple[pa.RecordBatch, _Keyed] | None = None
        for batch in batches:
            keyed = self._submit_keyed(batch)
            if pending is not None:
                yield self._finish(*pending)
            pending = (batch, keyed)
        if pending is not None:
            yield self._finish(*pending)
        self.raise_on_leftovers()

    def _submit_keyed(self, batch: pa.RecordBatch) -> _Keyed:
        # The keyed IDs run in DuckDB, which releases the GIL, so they are computed on a worker thread while
        # this one runs the other rules (mostly Python); results and counts are then taken in spec order.
        return {
            name: self._keyer.submit(self.pseudonymizer.ids, batch.column(name), col.key_domain)
            for name, col in self.spec.columns.items()
            if col.role in (Role.PERSON_KEY, Role.LINK_KEY)
        }

    def _finish(self, batch: pa.RecordBatch, keyed: _Keyed) -> pa.RecordBatch:
        others = {
            name: self._apply(name, col, batch)
            for name, col in self.spec.columns.items()
            if name not in keyed
        }
        arrays: list[pa.Array] = []
        for name in self.spec.columns:
            if name in keyed:
                result = keyed[name].result()
                self.counts.add(name, "pseudonymized", batch.num_rows - result.blank)
                self.counts.add(name, "blank", result.blank)
                arrays.append(result.ids)
            else:
                columns, counts = others[name]
                for outcome, rows in counts:
                    self.counts.add(name, outcome, rows)
                arrays.extend(columns)
        out = pa.RecordBatch.from_arrays(arrays, schema=self.spec.output_schema)
        self.counts.rows_in += batch.num_rows
        self.counts.rows_out += out.num_rows
        self._scan(out)
        return out

    def _apply(self, name: str, col: ColumnSpec, batch: pa.RecordBatch) -> tuple[list[pa.Array], _Counts]:
        """The output columns of one source column, and its (outcome, rows) counts in order."""
        if col.role in (Role.NAME, Role.IDENTIFIER, Role.DROP):  # deleted unread (the batch may lack it)
            return [], [("deleted", batch.num_rows)]
        counts: _Counts = []
        values = batch.column(name)
        match col.role:
            case Role.PERSON_KEY | Role.LINK_KEY:
                result = self.pseudonymizer.ids(values, col.key_domain)
                counts += [("pseudonymized", len(values) - result.blank), ("blank", result.blank)]
                return [result.ids], counts
            case Role.BIRTH_DATE:
                parsed = parse_dates(values)
                aged = ages(parsed.dates, self.as_of)
                counts += _date_counts(parsed.invalid, parsed.blank, len(values))
                counts.append(("future", aged.future))
                return [aged.age, aged.school_age], counts
            case Role.ADDRESS:
                addr = truncate_addresses(values)
                counts += addr.counts.items()
                return [addr.address, addr.ward, addr.town, addr.chome], counts
            case Role.DATE:
                parsed = parse_dates(values)
                counts += _date_counts(parsed.invalid, parsed.blank, len(values))
                dates = parsed.dates if col.coarsen is None else coarsen_dates(parsed.dates, col.coarsen)
                return [dates], counts
            case Role.KEEP:
                return [self._keep(col, values, counts)], counts
            case _:
                return [], [("deleted", len(values))]

    def _keep(self, col: ColumnSpec, values: pa.Array, counts: _Counts) -> pa.Array:
        text = pc.utf8_trim_whitespace(values)
        if col.type == "string":
            counts.append(("kept", len(values)))
            return text
        digits = pc.replace_substring(pc.utf8_normalize(text, "NFKC"), ",", "")
        valid = pc.match_substring_regex(digits, _INTEGER)
        blank = pc.sum(pc.equal(text, "")).as_py() or 0
        invalid = len(values) - (pc.sum(valid).as_py() or 0) - blank
        counts += [("kept", len(values) - invalid - blank), ("invalid", invalid), ("blank", blank)]
        return pc.cast(pc.if_else(valid, digits, pa.scalar(None, pa.string())), pa.int64())

    def _scan(self, out: pa.RecordBatch) -> None:
        for f in out.schema:
            if pa.types.is_string(f.type) and f.name not in self.spec.pseudonym_columns:
                for hit in scan_leftovers(f.name, out.column(f.name)):
                    self.counts.leftovers[(hit.column, hit.kind)] += hit.rows

    def raise_on_leftovers(self) -> None:
        hits = self.counts.leftover_hits()
        if not hits:
            return
        ja = "、".join(
            f"列「{h.column}」の {h.rows} 行に{LEFTOVER_LABELS_JA.get(h.kind, h.kind)}の形の値" for h in hits
        )
        en = "; ".join(f"column {h.column!r}: {h.rows} rows look like {h.kind}" for h in hits)
        raise LeftoverIdentifierError(
            f"残す列に個人識別符号などの形の値が見つかったため、抽出を中止しました: {ja}。"
            "仕様でその列を identifier か drop にしてください",
            f"extract stopped: identifier-shaped values in kept columns: {en}",
        )
