"""The synthetic city: file format, determinism, identifiers, cross-dataset consistency, dirt and ageing."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from stdnum.jp import in_ as my_number

from renkei.sending.synth import DATASETS, SnapshotFiles, calibration, generate_city, snapshot_dates
from renkei.sending.synth.calibration import WARDS
from renkei.sending.synth.dates import DIRTY_FORMS, DateForm, format_date, parse_date
from renkei.sending.synth.ids import insurer_check_digit
from renkei.sending.synth.writer import write_csv
from tests.support.examples import scaled

SPEC_DIR = Path(__file__).resolve().parents[2] / "src" / "renkei" / "specs"
AS_OF = dt.date(2021, 1, 1)
WARD_PATTERN = "(" + "|".join(WARDS) + ")"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> list[SnapshotFiles]:
    """One small city followed for three years, shared by the tests of this module."""
    return generate_city(8_000, AS_OF, tmp_path_factory.mktemp("city"), seed=11, years=3)


def read(path: Path) -> pa.Table:
    """An extract as all-string columns, decoded from CP932."""
    header = path.read_bytes().split(b"\r\n", 1)[0].decode("cp932").split(",")
    return csv.read_csv(
        path,
        read_options=csv.ReadOptions(encoding="cp932"),
        convert_options=csv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def latest(city: list[SnapshotFiles], dataset: str) -> pa.Table:
    return read(city[-1].paths[dataset])


def age_on(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


# --- files ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", DATASETS)
def test_header_is_the_spec_column_order(city: list[SnapshotFiles], dataset: str) -> None:
    spec = YAML(typ="safe").load((SPEC_DIR / f"{dataset}.yaml").read_text(encoding="utf-8"))
    first_line = city[-1].paths[dataset].read_bytes().split(b"\r\n", 1)[0]
    assert first_line.decode("cp932").split(",") == list(spec["columns"])


def test_every_snapshot_has_all_datasets_with_their_row_counts(city: list[SnapshotFiles]) -> None:
    assert [s.as_of for s in city] == [dt.date(2019, 1, 1), dt.date(2020, 1, 1), AS_OF]
    for snapshot in city:
        assert set(snapshot.paths) == set(DATASETS)
        for dataset, path in snapshot.paths.items():
            assert path == path.parent.parent / snapshot.as_of.isoformat() / f"{dataset}.csv"
            assert read(path).num_rows == snapshot.rows[dataset] > 0


def test_files_are_cp932_with_crlf_and_characters_shift_jis_lacks(city: list[SnapshotFiles]) -> None:
    data = city[-1].paths["juki"].read_bytes()
    text = data.decode("cp932")
    assert any(ch in text for ch in "髙﨑德濵")
    with pytest.raises(UnicodeDecodeError):
        data.decode("shift_jis")
    assert data.count(b"\r\n") == data.count(b"\n") == city[-1].rows["juki"] + 1
    assert not any(p.name.startswith(".") for p in city[-1].paths["juki"].parent.iterdir())  # no temp files


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    def run(seed: int, name: str) -> dict[str, bytes]:
        snapshot = generate_city(1_500, AS_OF, tmp_path / name, seed=seed)[-1]
        return {d: p.read_bytes() for d, p in snapshot.paths.items()}

    first, again, other = run(1, "a"), run(1, "b"), run(2, "c")
    assert first == again
    assert all(first[d] != other[d] for d in DATASETS)


def test_datasets_filter_and_progress(tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    snapshots = generate_city(
        500, AS_OF, tmp_path, datasets=["juki"], progress=lambda s, d, t: calls.append((s, d, t))
    )
    assert list(snapshots[-1].paths) == ["juki"]
    assert [p.name for p in (tmp_path / "2021-01-01").iterdir()] == ["juki.csv"]
    assert calls[-1] == (f"{AS_OF} juki", 500, 500)
    assert ("population", 1, 1) in calls
    with pytest.raises(ValueError, match="unknown datasets"):
        generate_city(500, AS_OF, tmp_path, datasets=["juki", "kaisha"])


def test_a_failed_write_leaves_neither_a_half_file_nor_a_temporary(tmp_path: Path) -> None:
    path = tmp_path / "juki.csv"
    path.write_bytes(b"old")
    table = pa.table({"氏名": ["髙橋　一郎"] * 300_000 + ["𠮷田　花子"]})  # 𠮷 has no CP932 code
    with pytest.raises(ValueError, match="cp932"):
        write_csv(table, path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["juki.csv"]


def test_fields_are_quoted_only_when_needed(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    write_csv(pa.table({"a": ["神戸市,中央区", 'say "hi"', "plain"], "b": ["1", "2", "3"]}), path)
    assert path.read_bytes().decode("cp932") == 'a,b\r\n"神戸市,中央区",1\r\n"say ""hi""",2\r\nplain,3\r\n'


def test_snapshot_dates_step_back_a_year_and_feb_29_becomes_feb_28() -> None:
    assert snapshot_dates(dt.date(2024, 2, 29), 3) == [
        dt.date(2022, 2, 28),
        dt.date(2023, 2, 28),
        dt.date(2024, 2, 29),
    ]


def test_transcribed_tables_agree_with_each_other() -> None:
    c = calibration
    for ward in WARDS:
        male, female = sum(c.WARD_BANDS_MALE[ward]), sum(c.WARD_BANDS_FEMALE[ward])
        assert (male, male + female) == (c.WARD_MALE[ward], c.WARD_POPULATION[ward]), ward
    for band in range(len(c.BAND_STARTS)):
        assert sum(c.WARD_BANDS_MALE[w][band] for w in WARDS) == c.CITY_BANDS_MALE[band]
        assert sum(c.WARD_BANDS_FEMALE[w][band] for w in WARDS) == c.CITY_BANDS_FEMALE[band]
    assert sum(c.WARD_POPULATION.values()) == c.CITY_POPULATION


# --- identifiers ------------------------------------------------------------------------------------------


def test_my_numbers_are_valid_unique_and_the_same_in_every_dataset(city: list[SnapshotFiles]) -> None:
    juki = latest(city, "juki")
    numbers = juki["個人番号"].to_pylist()
    assert all(my_number.is_valid(n) for n in numbers)
    assert len(set(numbers)) == len(numbers)
    by_person = dict(zip(juki["宛名番号"].to_pylist(), numbers, strict=True))
    for dataset, key, column in [
        ("kojin_juminzei", "宛名番号", "個人番号"),
        ("kokuho", "宛名番号", "個人番号"),
        ("jido_teate", "受給者宛名番号", "受給者個人番号"),
    ]:
        table = latest(city, dataset)
        assert all(
            by_person[k] == n for k, n in zip(table[key].to_pylist(), table[column].to_pylist(), strict=True)
        )


def test_other_identifiers_have_their_formats(city: list[SnapshotFiles]) -> None:
    juki = latest(city, "juki")
    for column, width in [("宛名番号", 10), ("世帯番号", 10), ("住民票コード", 11)]:
        values = juki[column].to_pylist()
        assert all(len(v) == width and v.isdigit() for v in values), column
    assert all(v.startswith("0") for v in juki["宛名番号"].to_pylist())  # leading zeros a reader must keep
    assert len(set(juki["住民票コード"].to_pylist())) == juki.num_rows
    kaigo = latest(city, "kaigo")
    assert all(len(v) == 10 and v.isdigit() for v in kaigo["被保険者番号"].to_pylist())
    assert set(latest(city, "kokuho")["保険者番号"].to_pylist()) == {"280016"}


def test_insurer_check_digit_follows_the_published_rule() -> None:
    # domain.md §3.2 worked examples, and Kobe's 国保 保険者番号.
    assert insurer_check_digit("3312001") == "5"
    assert insurer_check_digit("0628001") == "0"
    assert insurer_check_digit("3928010") == "2"
    assert insurer_check_digit("28001") == "6"


# --- consistency across datasets --------------------------------------------------------------------------


def test_every_person_key_exists_in_juki_of_the_same_snapshot(city: list[SnapshotFiles]) -> None:
    for snapshot in city:
        juki = read(snapshot.paths["juki"])
        household = dict(zip(juki["宛名番号"].to_pylist(), juki["世帯番号"].to_pylist(), strict=True))
        for dataset in ("kojin_juminzei", "kokuho", "kaigo", "seikatsu_hogo"):
            assert set(read(snapshot.paths[dataset])["宛名番号"].to_pylist()) <= set(household), dataset
        for dataset in ("kokuho", "seikatsu_hogo"):
            table = read(snapshot.paths[dataset])
            pairs = zip(table["宛名番号"].to_pylist(), table["世帯番号"].to_pylist(), strict=True)
            assert all(household[p] == h for p, h in pairs)
        jido = read(snapshot.paths["jido_teate"])
        for child, parent, setai in zip(
            jido["児童宛名番号"].to_pylist(),
            jido["受給者宛名番号"].to_pylist(),
            jido["世帯番号"].to_pylist(),
            strict=True,
        ):
            assert household[child] == household[parent] == setai


def test_welfare_covers_whole_households_about_three_percent(city: list[SnapshotFiles]) -> None:
    juki, hogo = latest(city, "juki"), latest(city, "seikatsu_hogo")
    households = set(hogo["世帯番号"].to_pylist())
    members = {
        p
        for p, h in zip(juki["宛名番号"].to_pylist(), juki["世帯番号"].to_pylist(), strict=True)
        if h in households
    }
    assert members == set(hogo["宛名番号"].to_pylist())
    assert 0.02 < hogo.num_rows / juki.num_rows < 0.04
    cases = Counter(zip(hogo["ケース番号"].to_pylist(), hogo["世帯番号"].to_pylist(), strict=True))
    assert len({c for c, _ in cases}) == len(households)  # one case per household


def test_program_shares_are_calibrated(city: list[SnapshotFiles]) -> None:
    juki = latest(city, "juki")
    n = juki.num_rows
    tax = Counter(latest(city, "kojin_juminzei")["課税区分"].to_pylist())
    assert 0.42 < (tax["課税"] + tax["均等割のみ"]) / n < 0.47
    assert abs(latest(city, "kokuho").num_rows / n - calibration.KOKUHO_SHARE) < 0.025
    jido = latest(city, "jido_teate")
    assert 0.05 < Counter(jido["支給区分"].to_pylist())["特例"] / jido.num_rows < 0.17
    one_person = Counter(Counter(juki["世帯番号"].to_pylist()).values())
    assert 0.33 < one_person[1] / sum(one_person.values()) < 0.47


# --- values -----------------------------------------------------------------------------------------------


def test_ages_are_plausible_in_every_dataset(city: list[SnapshotFiles]) -> None:
    def ages(table: pa.Table, column: str) -> list[int]:
        births = (parse_date(v) for v in table[column].to_pylist())
        return [age_on(b, AS_OF) for b in births if b is not None]

    everyone = ages(latest(city, "juki"), "生年月日")
    assert min(everyone) >= 0
    assert max(everyone) <= 110
    kaigo = latest(city, "kaigo")
    for kind, low, high in [("第1号", 65, 110), ("第2号", 40, 64)]:
        rows = kaigo.filter(pc.equal(kaigo["被保険者区分"], kind))
        assert all(low <= a <= high for a in ages(rows, "生年月日")), kind
    assert all(a < 75 for a in ages(latest(city, "kokuho"), "生年月日"))
    jido = latest(city, "jido_teate")
    assert all(a <= 15 for a in ages(jido, "児童生年月日"))
    juki = latest(city, "juki")
    birth = dict(zip(juki["宛名番号"].to_pylist(), juki["生年月日"].to_pylist(), strict=True))
    parents = [parse_date(birth[p]) for p in jido["受給者宛名番号"].to_pylist()]
    assert all(age_on(b, AS_OF) >= 18 for b in parents if b is not None)


def test_child_allowance_amounts_follow_the_rules(city: list[SnapshotFiles]) -> None:
    jido = latest(city, "jido_teate")
    for kind, amount in zip(jido["支給区分"].to_pylist(), jido["支給月額"].to_pylist(), strict=True):
        assert amount == "5000" if kind == "特例" else amount in {"10000", "15000"}


def test_dirty_values_are_present_in_small_shares(city: list[SnapshotFiles]) -> None:
    juki = latest(city, "juki")
    n: int = juki.num_rows

    def share(column: str, test: Callable[[str], bool]) -> float:
        values: list[str] = juki[column].to_pylist()
        return sum(1 for v in values if test(v)) / n

    assert 0 < share("生年月日", lambda v: parse_date(v) is None) < 0.01
    assert 0 < share("生年月日", lambda v: v == "") < 0.005
    assert 0 < share("生年月日", lambda v: "平成" in v or "昭和" in v) < 0.1
    assert 0 < share("生年月日", lambda v: any("０" <= c <= "９" for c in v)) < 0.02
    assert 0 < share("氏名", lambda v: v != v.rstrip()) < 0.02
    assert 0 < share("住所", lambda v: not any(w in v for w in WARDS)) < 0.01  # blank or junk
    assert 0 < share("住所", lambda v: v.endswith("\u3000")) < 0.01


def test_addresses_mix_written_forms_and_households_share_one(city: list[SnapshotFiles]) -> None:
    juki = latest(city, "juki")
    addresses = juki["住所"].to_pylist()
    for marker in ("丁目", "番地の", "兵庫県神戸市", "号室", "字", "－", "六丁目"):
        assert any(marker in a for a in addresses), marker
    assert any(a.startswith("神戸市") and "-" in a and "丁目" not in a and "番" not in a for a in addresses)
    assert any(any("０" <= c <= "９" for c in a) for a in addresses)
    assert 0.2 < sum(1 for k in juki["方書"].to_pylist() if k) / juki.num_rows < 0.8
    by_household: dict[str, set[str]] = {}
    for setai, address in zip(juki["世帯番号"].to_pylist(), addresses, strict=True):
        by_household.setdefault(setai, set()).add(address.rstrip("\u3000"))
    assert all(len(a) == 1 for a in by_household.values())


def test_foreign_residents_and_previous_addresses(city: list[SnapshotFiles]) -> None:
    juki = latest(city, "juki")
    nationalities = Counter(juki["国籍"].to_pylist())
    assert 0.02 < 1 - nationalities["日本"] / juki.num_rows < 0.05
    assert {"韓国", "中国", "ベトナム"} <= set(nationalities)
    rows = juki.to_pylist()
    assert all(r["前住所"] == "" for r in rows if r["異動事由"] in {"出生", "職権記載"})
    moved_in = [r["前住所"] for r in rows if r["異動事由"] == "転入"]
    assert moved_in and all(r and "神戸市" not in r for r in moved_in)
    assert all("神戸市" in r["前住所"] for r in rows if r["異動事由"] == "転居")


# --- years ------------------------------------------------------------------------------------------------


def test_three_years_of_ageing_births_deaths_and_moves(city: list[SnapshotFiles]) -> None:
    years = [{r["宛名番号"]: r for r in read(s.paths["juki"]).to_pylist()} for s in city]
    in_all = set(years[0]) & set(years[1]) & set(years[2])
    assert len(in_all) > 0.85 * len(years[0])
    assert all(years[0][p]["生年月日"] == years[2][p]["生年月日"] for p in in_all)
    for before, after, start in [(years[0], years[1], city[0].as_of), (years[1], years[2], city[1].as_of)]:
        gone, new = set(before) - set(after), set(after) - set(before)
        assert 0.02 < len(gone) / len(before) < 0.07  # deaths and moves out of the city
        births = [p for p in new if after[p]["異動事由"] == "出生"]
        assert 0.003 < len(births) / len(before) < 0.012
        born = [parse_date(after[p]["生年月日"]) for p in births]
        assert all(b > start for b in born if b is not None)
        assert any(after[p]["異動事由"] in {"転入", "国外転入"} for p in new)
        moved = [p for p in set(before) & set(after) if before[p]["住所"] != after[p]["住所"]]
        assert 0.02 < len(moved) / len(before) < 0.08
        assert all(after[p]["異動事由"] == "転居" for p in moved if before[p]["住所"].strip())
    seen = set(years[0])
    for previous, year in itertools.pairwise(years):
        assert not (set(year) - set(previous)) & seen  # a new person never gets a number used before
        seen |= set(year)


# --- date forms -------------------------------------------------------------------------------------------


@given(
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2060, 12, 31)), st.sampled_from(list(DateForm))
)
@settings(max_examples=scaled(3))
def test_every_clean_date_form_reads_back_and_dirty_ones_do_not(date: dt.date, form: DateForm) -> None:
    parsed = parse_date(format_date(date, form))
    assert parsed is None if form in DIRTY_FORMS else parsed == date


def test_era_boundaries() -> None:
    assert format_date(dt.date(2019, 5, 1), DateForm.WAREKI) == "令和元年5月1日"
    assert format_date(dt.date(2019, 5, 1), DateForm.ERA_OVERRUN) == "平成31年5月1日"
    assert format_date(dt.date(1980, 4, 1), DateForm.ERA_CODE) == "3550401"
    assert format_date(dt.date(1980, 4, 1), DateForm.WAREKI_SHORT) == "S55.4.1"
    assert parse_date("昭和64年1月8日") is None  # 昭和 ended on January 7
    assert parse_date("2019-02-30") is None
