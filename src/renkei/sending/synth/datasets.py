"""The six extracts, derived from the city's state on a snapshot date.

Each builder returns a table of string columns in exactly the order of ``src/renkei/specs/<dataset>.yaml``.
Program membership (taxpayer, 国保, 要介護認定, 生活保護) is drawn from stable per-person or per-household
latents (:meth:`Rng.by_id`), so a person keeps their status from one year to the next unless their age, ward
or household changes it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cached_property
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from renkei.sending.synth import dirt, ids
from renkei.sending.synth.addresses import (
    ADDRESS_COLUMNS,
    FORM_COLUMNS,
    KATAGAKI_FORM_WEIGHTS,
    render,
    town_table,
)
from renkei.sending.synth.calibration import (
    CARE_LEVELS,
    CARE_MONTHLY_BENEFIT,
    CARE_NO_SERVICE_SHARE,
    CARE_RATE_40_64,
    CARE_RATE_BY_AGE,
    CHILD_ALLOWANCE_SPECIAL_SHARE,
    KINTOUWARI,
    KOKUHO_INSURER_BODY,
    SHOTOKUWARI_RATE,
    TAX_KINTOUWARI_ONLY_SHARE,
    TAX_PENSION_COLLECTION_SHARE,
    TAX_SPECIAL_COLLECTION_SHARE,
    TAXPAYER_SHARE,
    WARD_CARE_65_POPULATION,
    WARD_CARE_BY_LEVEL,
    WARD_WELFARE_WEIGHT,
    WARDS,
    WELFARE_SHARE,
)
from renkei.sending.synth.city import NAME_GROUP, NATIONALITIES, REASONS, City, pick_top, pick_until
from renkei.sending.synth.dates import render_dates
from renkei.sending.synth.names import full_names
from renkei.sending.synth.population import AGES, RELATIONS, Rel, ages_at, by_age, school_ages_at
from renkei.sending.synth.rng import Rng, choice_by_group_from, choice_from
from renkei.sending.synth.vec import (
    Array,
    arange,
    clip,
    const,
    days,
    flat,
    floor_int,
    join,
    pad,
    take,
    text,
    where,
)

COLUMNS: Final = {
    "juki": (
        "宛名番号", "世帯番号", "氏名", "氏名カナ", "生年月日", "性別", "続柄", "住所", "方書", "郵便番号",
        "個人番号", "住民票コード", "国籍", "住民となった日", "異動事由", "異動日", "前住所",
    ),
    "kojin_juminzei": (
        "宛名番号", "氏名", "生年月日", "住所", "個人番号", "課税年度", "課税区分", "主たる所得区分",
        "総所得金額", "所得割額", "均等割額", "徴収方法",
    ),
    "kokuho": (
        "宛名番号", "世帯番号", "氏名", "生年月日", "住所", "個人番号", "保険者番号", "被保険者記号番号",
        "資格取得日", "資格区分", "所得区分",
    ),
    "kaigo": (
        "宛名番号", "被保険者番号", "氏名", "生年月日", "住所", "被保険者区分", "要介護度", "認定日",
        "認定有効期間終了日", "給付費月額",
    ),
    "jido_teate": (
        "児童宛名番号", "児童氏名", "児童生年月日", "受給者宛名番号", "受給者氏名", "受給者個人番号", "世帯番号",
        "住所", "支給区分", "支給月額", "認定日",
    ),
    "seikatsu_hogo": (
        "宛名番号", "ケース番号", "世帯番号", "氏名", "生年月日", "住所", "電話番号", "保護開始日", "世帯類型",
        "扶助種別", "保護費月額",
    ),
}  # fmt: skip
DATASETS: Final = tuple(COLUMNS)

# Work status per person, from which income, tax and insurance follow.
EMPLOYEE, SELF_EMPLOYED, PENSIONER, NO_INCOME = range(4)
# ESTIMATE: (employee, self-employed, pensioner, no income of their own) by sex and age from this age on.
_STATUS_MALE: Final = (
    (0, (0, 0, 0, 1)), (15, (0.12, 0, 0, 0.88)), (20, (0.55, 0.02, 0, 0.43)), (25, (0.82, 0.09, 0, 0.09)),
    (60, (0.60, 0.12, 0.14, 0.14)), (65, (0.38, 0.12, 0.50, 0)), (70, (0.18, 0.10, 0.72, 0)),
    (75, (0.04, 0.05, 0.91, 0)),
)  # fmt: skip
_STATUS_FEMALE: Final = (
    (0, (0, 0, 0, 1)), (15, (0.12, 0, 0, 0.88)), (20, (0.55, 0.02, 0, 0.43)), (25, (0.62, 0.05, 0, 0.33)),
    (60, (0.44, 0.06, 0.15, 0.35)), (65, (0.24, 0.06, 0.62, 0.08)), (70, (0.10, 0.05, 0.77, 0.08)),
    (75, (0.02, 0.03, 0.85, 0.10)),
)  # fmt: skip
# Of the taxpayers, the share drawn from each status pool (calibrates 主たる所得区分 and 徴収方法 to §5e).
TAXPAYER_POOL_SHARES: Final = (0.75, 0.05, 0.20)
INCOME_KINDS: Final = ("給与", "営業等", "年金", "その他")
# ESTIMATE: log-logistic 総所得金額: (median yen, shape) per income kind; 給与 scaled by age and sex below.
INCOME_MEDIAN: Final = {"給与": 3_200_000, "営業等": 2_400_000, "年金": 1_600_000, "その他": 1_600_000}
INCOME_SHAPE: Final = {"給与": 0.38, "営業等": 0.55, "年金": 0.30, "その他": 0.60}
SALARY_AGE_FACTOR: Final = ((15, 0.45), (20, 0.6), (25, 0.8), (30, 1.0), (40, 1.2), (60, 0.85), (65, 0.6))
PENSION_SHARE_OF_PENSIONERS: Final = 0.92  # the rest of the pensioner pool is その他
# 特別徴収 and 年金特徴 shares of taxpayers (§5e) spread over the salaried and the pension earners.
SPECIAL_COLLECTION_OF_SALARY: Final = TAX_SPECIAL_COLLECTION_SHARE / TAXPAYER_POOL_SHARES[0]
PENSION_COLLECTION_OF_PENSION: Final = TAX_PENSION_COLLECTION_SHARE / (
    TAXPAYER_POOL_SHARES[2] * PENSION_SHARE_OF_PENSIONERS
)
KOKUHO_INSURER_NUMBER: Final = KOKUHO_INSURER_BODY + ids.insurer_check_digit(KOKUHO_INSURER_BODY)
# ESTIMATE: written forms of the non-住基 systems (see addresses.ADDRESS_FORM_WEIGHTS): mostly the standard one.
OTHER_SYSTEM_FORMS: Final = (0.7, 0.1, 0.05, 0.05, 0.05, 0.03, 0.02)
OTHER_SYSTEM_PREFIXES: Final = (0.3, 0.65, 0.05)
CARE_VALIDITY_MONTHS: Final = ((12, 0.35), (24, 0.20), (36, 0.35), (48, 0.10))


def fiscal_year(on: dt.date) -> int:
    return on.year if on.month >= 4 else on.year - 1


class Snapshot:
    """Everything derived from a city on one date, computed lazily and at most once."""

    def __init__(self, city: City, rng: Rng) -> None:
        self.city = city
        self.on = city.as_of
        self.rng = rng  # seed-level: ids and latents do not depend on the year
        self.people = city.people
        self.households = city.households
        self.n = city.people.num_rows

    # --- per person basics ---
    @cached_property
    def pid(self) -> Array:
        return self.people["pid"].combine_chunks()

    @cached_property
    def hh(self) -> Array:
        """Row of each person's household in ``households``."""
        return pc.index_in(self.people["hid"], value_set=self.households["hid"])

    @cached_property
    def hid(self) -> Array:
        return self.people["hid"].combine_chunks()

    @cached_property
    def ward(self) -> Array:
        return pc.cast(take(self.households["ward"], self.hh), pa.int64())

    @cached_property
    def age(self) -> Array:
        return ages_at(self.people["birth"], self.on)

    @cached_property
    def school_age(self) -> Array:
        return school_ages_at(self.people["birth"], self.on)

    @cached_property
    def sex(self) -> Array:
        return pc.cast(self.people["sex"], pa.int64())

    @cached_property
    def atena(self) -> Array:
        return pad(self.people["atena"], 10)

    @cached_property
    def setai(self) -> Array:
        return take(pad(self.households["setai"], 10), self.hh)

    @cached_property
    def names(self) -> tuple[Array, Array]:
        group = take(NAME_GROUP, self.people["nat"])
        return full_names(self.people["surname"], self.people["given"], group)

    @cached_property
    def my_number(self) -> Array:
        return ids.my_numbers(self.rng, self.pid)

    def birth(self, dataset: str, weights: tuple[float, ...], rows: Array | None = None) -> Array:
        """生年月日 of the given person rows (all if None) in the forms this dataset's records carry."""
        pid = self.pid if rows is None else take(self.pid, rows)
        birth = self.people["birth"] if rows is None else take(self.people["birth"], rows)
        return render_dates(birth, dirt.date_forms(self.rng, f"{dataset}.birth", pid, weights))

    def event_date(self, dataset: str, day_numbers: Array, row_ids: Array) -> Array:
        forms = dirt.date_forms(self.rng, f"{dataset}.dates", row_ids, dirt.EVENT_DATE_FORMS)
        return render_dates(day_numbers, forms)

    def address(self, dataset: str, rows: Array | None = None) -> tuple[Array, Array]:
        """住所 and 方書 of the given person rows (all if None) as this dataset's system writes them.

        住基 writes each household's own habitual form; the other systems have their own (stable per household)
        and no 方書 column, so half of them write the building into 住所 and half drop it. Addresses are
        rendered per household or per row, whichever is fewer.
        """
        households = self.households
        hh = self.hh if rows is None else take(self.hh, rows)
        per_household = len(hh) >= households.num_rows
        at = None if per_household else hh
        parts = {c: _pick(households[c], at) for c in ADDRESS_COLUMNS}
        hid = _pick(households["hid"], at)
        if dataset == "juki":
            forms = {c: _pick(households[c], at) for c in FORM_COLUMNS}
        else:
            forms = {
                "form": choice_from(self.rng.by_id(f"{dataset}.form", hid), OTHER_SYSTEM_FORMS),
                "prefix": choice_from(self.rng.by_id(f"{dataset}.prefix", hid), OTHER_SYSTEM_PREFIXES),
                "dash": const(0, len(hid), pa.int64()),
                "glued": pc.less(self.rng.by_id(f"{dataset}.glued", hid), 0.5),
                "katagaki_form": choice_from(
                    self.rng.by_id(f"{dataset}.katagaki", hid), KATAGAKI_FORM_WEIGHTS
                ),
            }
        address, katagaki = render(parts, forms)
        address = dirt.spoil_addresses(self.rng, f"{dataset}.address", hid, address)
        if per_household:
            return take(address, hh), take(katagaki, hh)
        return address, katagaki

    # --- finance: work status, taxpayers, incomes ---
    @cached_property
    def status(self) -> Array:
        tables = by_age(_STATUS_MALE, (0.0, 0.0, 0.0, 1.0)) + by_age(_STATUS_FEMALE, (0.0, 0.0, 0.0, 1.0))
        group = pc.add(pc.multiply(self.sex, AGES), clip(self.age, 0, AGES - 1))
        return choice_by_group_from(self.rng.by_id("status", self.pid), group, tables)

    @cached_property
    def taxpayer(self) -> Array:
        """Taxpayers: the published share of residents, drawn from the status pools in fixed proportions."""
        total = round(TAXPAYER_SHARE * self.n)
        pool = where(pc.less(self.age, 16), 3, self.status)
        quotas = [round(total * share) for share in TAXPAYER_POOL_SHARES] + [0]
        return pick_top(self.rng.by_id("taxpayer", self.pid), pool, quotas)  # stable from year to year

    @cached_property
    def kintouwari_only(self) -> Array:
        return pc.and_(self.taxpayer, pc.less(self.rng.by_id("kinto", self.pid), TAX_KINTOUWARI_ONLY_SHARE))

    @cached_property
    def income_kind(self) -> Array:
        """Index into INCOME_KINDS: 給与 for employees; 営業等 or その他 for the self-employed; 年金 or その他."""
        u = self.rng.by_id("kind", self.pid)
        return pc.choose(
            pc.min_element_wise(self.status, 2),
            const(0, self.n, pa.int64()),
            where(pc.less(u, 0.62), 1, 3),
            where(pc.less(u, PENSION_SHARE_OF_PENSIONERS), 2, 3),
        )

    @cached_property
    def has_income_record(self) -> Array:
        return pc.and_(pc.less(self.status, NO_INCOME), pc.greater_equal(self.age, 16))

    @cached_property
    def income(self) -> Array:
        """総所得金額 (yen, rounded down to 1,000): taxable incomes for taxpayers, small ones for the rest."""
        u = clip(self.rng.by_id("income", self.pid), 0.002, 0.998)
        odds = pc.divide(u, pc.subtract(1.0, u))
        kind = self.income_kind
        median = take([float(INCOME_MEDIAN[k]) for k in INCOME_KINDS], kind)
        shape = take([INCOME_SHAPE[k] for k in INCOME_KINDS], kind)
        age_factor = take(by_age(SALARY_AGE_FACTOR, 0.4), clip(self.age, 0, AGES - 1))
        salary_factor = pc.multiply(age_factor, where(pc.equal(self.sex, 1), 0.72, 1.0))
        median = where(pc.equal(kind, 0), pc.multiply(median, salary_factor), median)
        drawn = pc.multiply(median, pc.power(odds, shape))
        # Taxpayers not paying 均等割 only have more than 1,000,000: fold the lower tail into 1.0–1.5 million.
        taxed = where(pc.less(drawn, 1_000_000.0), pc.add(1_000_000.0, pc.multiply(drawn, 0.5)), drawn)
        small = pc.multiply(self.rng.by_id("small.income", self.pid), 450_000.0)
        modest = pc.add(450_000.0, pc.multiply(self.rng.by_id("modest.income", self.pid), 500_000.0))
        value = where(self.kintouwari_only, modest, where(self.taxpayer, taxed, small))
        return pc.multiply(floor_int(pc.divide(value, 1000.0)), 1000)

    @cached_property
    def shotokuwari(self) -> Array:
        income = pc.cast(self.income, pa.float64())
        social = pc.multiply(income, where(pc.less(self.income_kind, 2), 0.14, 0.03))
        dependents = choice_from(self.rng.by_id("dependents", self.pid), (0.6, 0.25, 0.12, 0.03))
        deductions = pc.add(
            pc.add(430_000.0, social), pc.multiply(pc.cast(dependents, pa.float64()), 330_000.0)
        )
        taxable = pc.multiply(
            floor_int(pc.divide(pc.max_element_wise(pc.subtract(income, deductions), 0.0), 1000.0)), 1000
        )
        tax = pc.multiply(
            floor_int(pc.divide(pc.subtract(pc.multiply(taxable, SHOTOKUWARI_RATE), 2_500.0), 100.0)), 100
        )
        charged = pc.and_(self.taxpayer, pc.invert(self.kintouwari_only))
        return where(charged, pc.max_element_wise(tax, 100), 0)

    @cached_property
    def household_income(self) -> Array:
        """Per person: the largest taxpayer income in their household (0 if nobody in it pays tax)."""
        taxed_income = where(self.taxpayer, self.income, 0)
        per_hh = (
            pa.table({"h": self.hh, "i": taxed_income})
            .group_by("h", use_threads=False)
            .aggregate([("i", "max")])
        )
        return take(per_hh["i_max"], pc.index_in(self.hh, value_set=per_hh["h"]))

    # --- welfare households ---
    @cached_property
    def household_stats(self) -> pa.Table:
        """Per household row: size, adults, children, working-age adults, school children, oldest age."""
        t = pa.table(
            {
                "h": self.hh,
                "one": const(1, self.n, pa.int64()),
                "adult": pc.cast(pc.greater_equal(self.age, 18), pa.int64()),
                "child": pc.cast(pc.less(self.age, 18), pa.int64()),
                "working": pc.cast(
                    pc.and_(pc.greater_equal(self.age, 18), pc.less(self.age, 65)), pa.int64()
                ),
                "school": pc.cast(
                    pc.and_(pc.greater_equal(self.school_age, 6), pc.less_equal(self.school_age, 14)),
                    pa.int64(),
                ),
                "age": self.age,
            }
        )
        stats = t.group_by("h", use_threads=False).aggregate(
            [
                ("one", "sum"),
                ("adult", "sum"),
                ("child", "sum"),
                ("working", "sum"),
                ("school", "sum"),
                ("age", "max"),
            ]
        )
        order = pc.sort_indices(stats["h"])
        return stats.take(order)

    @cached_property
    def head(self) -> Array:
        """Per household row: the person row of its 世帯主."""
        heads = pc.indices_nonzero(pc.equal(self.people["rel"], int(Rel.HEAD)))
        return take(heads, pc.sort_indices(take(self.hh, heads)))

    @cached_property
    def welfare_household(self) -> Array:
        """Per household row: receives 生活保護. About 3 % of persons, weighted to 長田・兵庫・中央 and to
        elderly singles and single parents; stable from year to year."""
        stats = self.household_stats
        head = self.head
        head_age = take(self.age, head)
        size = stats["one_sum"]
        single_parent = pc.and_(pc.equal(stats["adult_sum"], 1), pc.greater(stats["child_sum"], 0))
        kind_weight = where(
            pc.equal(size, 1),
            where(pc.greater_equal(head_age, 65), 3.0, 1.3),
            where(
                single_parent,
                3.0,
                where(pc.and_(pc.equal(size, 2), pc.equal(stats["working_sum"], 0)), 0.8, 0.35),
            ),
        )
        foreign = pc.greater(take(self.people["nat"], head), 0)
        weight = pc.multiply(
            pc.multiply(kind_weight, take([WARD_WELFARE_WEIGHT[w] for w in WARDS], self.households["ward"])),
            where(foreign, 1.3, 1.0),
        )
        keys = pc.divide(pc.ln(pc.subtract(1.0, self.rng.by_id("welfare", self.households["hid"]))), weight)
        return pick_until(keys, const(0, len(keys), pa.int64()), size, [WELFARE_SHARE * self.n])

    @cached_property
    def on_welfare(self) -> Array:
        return take(self.welfare_household, self.hh)

    # --- dataset builders ---
    def juki(self) -> pa.Table:
        name, kana = self.names
        address, katagaki = self.address("juki")
        postal = take(town_table().postal, take(self.households["town"], self.hh))
        table = pa.table(
            {
                "宛名番号": self.atena,
                "世帯番号": self.setai,
                "氏名": dirt.spoil_names(self.rng, "juki.name", self.pid, name),
                "氏名カナ": kana,
                "生年月日": self.birth("juki", dirt.JUKI_BIRTH_FORMS),
                "性別": take(["男", "女"], self.sex),
                "続柄": take(RELATIONS, self.people["rel"]),
                "住所": address,
                "方書": katagaki,
                "郵便番号": dirt.postal_codes(self.rng, "juki.postal", self.hid, postal),
                "個人番号": self.my_number,
                "住民票コード": ids.juminhyo_codes(self.rng, self.pid),
                "国籍": take(NATIONALITIES, self.people["nat"]),
                "住民となった日": self.event_date("juki", self.people["since"], self.pid),
                "異動事由": take(REASONS, self.people["reason"]),
                "異動日": self.event_date("juki.moved", self.people["moved"], self.pid),
                "前住所": pc.fill_null(self.people["prev"], ""),
            }
        )
        return table  # already in 世帯番号 order: the state is kept sorted (city.ordered)

    def kojin_juminzei(self) -> pa.Table:
        rows = pc.indices_nonzero(pc.or_(self.taxpayer, self.has_income_record))
        taxpayer = take(self.taxpayer, rows)
        kinto_only = take(self.kintouwari_only, rows)
        kind = take(self.income_kind, rows)
        u = take(self.rng.by_id("collection", self.pid), rows)
        collection = where(
            pc.equal(kind, 0),
            where(pc.less(u, SPECIAL_COLLECTION_OF_SALARY), "特別徴収", "普通徴収"),
            where(
                pc.and_(pc.equal(kind, 2), pc.less(u, PENSION_COLLECTION_OF_PENSION)), "年金特徴", "普通徴収"
            ),
        )
        name, _ = self.names
        address, _ = self.address("kojin_juminzei", rows)
        return pa.table(
            {
                "宛名番号": take(self.atena, rows),
                "氏名": take(name, rows),
                "生年月日": self.birth("kojin_juminzei", dirt.OTHER_BIRTH_FORMS, rows),
                "住所": address,
                "個人番号": take(self.my_number, rows),
                "課税年度": const(str(fiscal_year(self.on)), len(rows), pa.string()),
                "課税区分": where(taxpayer, where(kinto_only, "均等割のみ", "課税"), "非課税"),
                "主たる所得区分": take(INCOME_KINDS, kind),
                "総所得金額": text(take(self.income, rows)),
                "所得割額": text(take(self.shotokuwari, rows)),
                "均等割額": text(where(taxpayer, KINTOUWARI, 0)),
                "徴収方法": where(taxpayer, collection, ""),
            }
        )

    @cached_property
    def kokuho_member(self) -> Array:
        employed = pc.and_(pc.equal(self.status, EMPLOYEE), pc.greater_equal(self.age, 15))
        covered = pa.table({"h": self.hh, "e": pc.cast(pc.and_(employed, pc.less(self.age, 75)), pa.int64())})
        per_hh = covered.group_by("h", use_threads=False).aggregate([("e", "max")])
        employee_in_household = pc.equal(
            take(per_hh["e_max"], pc.index_in(self.hh, value_set=per_hh["h"])), 1
        )
        uninsured_by_work = pc.or_(
            pc.equal(self.status, SELF_EMPLOYED),
            pc.and_(pc.invert(employed), pc.invert(employee_in_household)),
        )
        return pc.and_(pc.and_(pc.less(self.age, 75), uninsured_by_work), pc.invert(self.on_welfare))

    def kokuho(self) -> pa.Table:
        rows = pc.indices_nonzero(self.kokuho_member)
        age = take(self.age, rows)
        on = days(self.on)
        since = pc.cast(take(self.people["since"], rows), pa.int64())
        birth = pc.cast(take(self.people["birth"], rows), pa.int64())
        joined_years = pc.multiply(
            take(self.rng.by_id("kokuho.joined", self.pid), rows), pc.cast(clip(age, 1, 20), pa.float64())
        )
        joined = pc.max_element_wise(
            pc.max_element_wise(since, birth), pc.subtract(on, floor_int(pc.multiply(joined_years, 365.25)))
        )
        school_age = take(self.school_age, rows)
        category = where(
            pc.less(school_age, 6), "未就学児", where(pc.greater_equal(age, 70), "高齢受給者", "一般")
        )
        hh_income = take(self.household_income, rows)
        under_70 = _bracket(
            hh_income, ((9_010_000, "ア"), (6_000_000, "イ"), (2_100_000, "ウ"), (1, "エ")), "オ"
        )
        low = where(pc.less(take(self.rng.by_id("kokuho.low", self.pid), rows), 0.6), "低所得Ⅱ", "低所得Ⅰ")
        over_70 = _bracket(
            hh_income,
            ((6_900_000, "現役並みⅢ"), (3_800_000, "現役並みⅡ"), (2_500_000, "現役並みⅠ"), (1, "一般")),
            "",
        )
        over_70 = where(pc.equal(over_70, ""), low, over_70)
        hh = take(self.hh, rows)
        symbol = pad(pc.add(take(self.households["ward"], hh), 1), 2)
        number = pad(ids.scrambled(self.rng, "kokuho", take(self.households["hid"], hh), 7), 7)
        name, _ = self.names
        address, _ = self.address("kokuho", rows)
        return pa.table(
            {
                "宛名番号": take(self.atena, rows),
                "世帯番号": take(self.setai, rows),
                "氏名": take(name, rows),
                "生年月日": self.birth("kokuho", dirt.OTHER_BIRTH_FORMS, rows),
                "住所": address,
                "個人番号": take(self.my_number, rows),
                "保険者番号": const(KOKUHO_INSURER_NUMBER, len(rows), pa.string()),
                "被保険者記号番号": join(symbol, "-", number),
                "資格取得日": self.event_date("kokuho", joined, take(self.pid, rows)),
                "資格区分": category,
                "所得区分": where(pc.greater_equal(age, 70), over_70, under_70),
            }
        )

    def kaigo(self) -> pa.Table:
        rate = take(by_age(CARE_RATE_BY_AGE, 0.0), clip(self.age, 0, AGES - 1))
        ward_factor = take(self._care_ward_factor(rate), self.ward)
        first = pc.and_(
            pc.greater_equal(self.age, 65),
            pc.less(
                self.rng.by_id("care", self.pid), pc.min_element_wise(pc.multiply(rate, ward_factor), 0.95)
            ),
        )
        second = pc.and_(
            pc.and_(pc.greater_equal(self.age, 40), pc.less(self.age, 65)),
            pc.less(self.rng.by_id("care", self.pid), CARE_RATE_40_64),
        )
        rows = pc.indices_nonzero(pc.or_(first, second))
        row_pid = take(self.pid, rows)
        level = choice_by_group_from(
            self.rng.by_id("care.level", row_pid),
            take(self.ward, rows),
            [WARD_CARE_BY_LEVEL[w] for w in WARDS],
        )
        start, end = _certification_period(self.rng.child(f"kaigo.{self.on}"), row_pid, self.on)
        benefit = pc.multiply(
            take(CARE_MONTHLY_BENEFIT, level),
            pc.add(0.6, pc.multiply(self.rng.by_id("care.benefit", row_pid), 0.8)),
        )
        benefit = pc.multiply(floor_int(pc.divide(benefit, 10.0)), 10)
        benefit = where(pc.less(self.rng.by_id("care.unused", row_pid), CARE_NO_SERVICE_SHARE), 0, benefit)
        name, _ = self.names
        address, _ = self.address("kaigo", rows)
        return pa.table(
            {
                "宛名番号": take(self.atena, rows),
                "被保険者番号": pad(ids.scrambled(self.rng, "kaigo", row_pid, 10), 10),
                "氏名": take(name, rows),
                "生年月日": self.birth("kaigo", dirt.KAIGO_BIRTH_FORMS, rows),
                "住所": address,
                "被保険者区分": where(take(first, rows), "第1号", "第2号"),
                "要介護度": take(CARE_LEVELS, level),
                "認定日": self.event_date("kaigo", start, row_pid),
                "認定有効期間終了日": self.event_date("kaigo.end", end, row_pid),
                "給付費月額": text(benefit),
            }
        )

    def _care_ward_factor(self, rate: Array) -> list[float]:
        """Per ward, the factor that brings certified ÷ 65+ to the ward's §5a ratio for today's age mix."""
        old = pc.greater_equal(self.age, 65)
        t = pa.table(
            {
                "w": pc.filter(self.ward, old),
                "r": pc.filter(rate, old),
                "one": const(1, pc.sum(old).as_py() or 0, pa.int64()),
            }
        )
        per_ward = t.group_by("w", use_threads=False).aggregate([("r", "sum"), ("one", "sum")]).to_pylist()
        expected = {row["w"]: (row["r_sum"], row["one_sum"]) for row in per_ward}
        factors = []
        for w, ward in enumerate(WARDS):
            target_ratio = sum(WARD_CARE_BY_LEVEL[ward]) / WARD_CARE_65_POPULATION[ward]
            rate_sum, count = expected.get(w, (0.0, 0))
            factors.append(target_ratio * count / rate_sum if rate_sum else 1.0)
        return factors

    def jido_teate(self) -> pa.Table:
        recipient = self._child_recipient()
        eligible = pc.and_(pc.less_equal(self.school_age, 14), pc.greater_equal(recipient, 0))
        counted = pc.and_(pc.less_equal(self.school_age, 17), pc.greater_equal(recipient, 0))
        birth_rank = self._birth_rank(counted, recipient)
        rows = pc.indices_nonzero(eligible)
        who = take(recipient, rows)
        recipient_income = take(where(self.taxpayer, self.income, 0), who)
        threshold = (
            pc.quantile(recipient_income, q=1 - CHILD_ALLOWANCE_SPECIAL_SHARE)[0].as_py() if len(rows) else 0
        )
        special = pc.greater(recipient_income, threshold)
        age = take(self.age, rows)
        third_plus = pc.and_(
            pc.greater_equal(take(birth_rank, rows), 2), pc.less_equal(take(self.school_age, rows), 11)
        )
        amount = where(special, 5_000, where(pc.or_(pc.less(age, 3), third_plus), 15_000, 10_000))
        birth = pc.cast(take(self.people["birth"], rows), pa.int64())
        since = pc.cast(take(self.people["since"], rows), pa.int64())
        row_pid = take(self.pid, rows)
        approved = pc.min_element_wise(
            pc.add(
                pc.max_element_wise(birth, since),
                floor_int(pc.multiply(self.rng.by_id("jido.approved", row_pid), 25.0)),
            ),
            days(self.on),
        )
        name, _ = self.names
        address, _ = self.address("jido_teate", rows)
        return pa.table(
            {
                "児童宛名番号": take(self.atena, rows),
                "児童氏名": take(name, rows),
                "児童生年月日": self.birth("jido_teate", dirt.OTHER_BIRTH_FORMS, rows),
                "受給者宛名番号": take(self.atena, who),
                "受給者氏名": take(name, who),
                "受給者個人番号": take(self.my_number, who),
                "世帯番号": take(self.setai, rows),
                "住所": address,
                "支給区分": where(special, "特例", "本則"),
                "支給月額": text(amount),
                "認定日": self.event_date("jido_teate", approved, row_pid),
            }
        )

    def _child_recipient(self) -> Array:
        """Per person, the row of the parent who receives their allowance: the recorded guardian if still in the
        same household and adult, else the 世帯主 (if an adult other than the child), else -1."""
        guardian = pc.index_in(self.people["guardian"], value_set=self.pid)
        guardian_ok = pc.and_(
            pc.equal(take(self.hh, pc.fill_null(guardian, 0)), self.hh),
            pc.greater_equal(take(self.age, pc.fill_null(guardian, 0)), 18),
        )
        guardian_ok = pc.and_(pc.invert(pc.is_null(guardian)), pc.fill_null(guardian_ok, False))
        head = take(self.head, self.hh)
        head_ok = pc.and_(pc.not_equal(head, arange(self.n)), pc.greater_equal(take(self.age, head), 18))
        return where(guardian_ok, pc.cast(pc.fill_null(guardian, 0), pa.int64()), where(head_ok, head, -1))

    def _birth_rank(self, counted: Array, recipient: Array) -> Array:
        """Per person: 0 for the eldest counted child of their recipient, 1 for the next, …"""
        rows = pc.indices_nonzero(counted)
        keys = pa.table({"r": take(recipient, rows), "b": take(self.people["birth"], rows)})
        order = pc.sort_indices(keys, sort_keys=[("r", "ascending"), ("b", "ascending")])
        sorted_recipient = take(keys["r"], order)
        first = pc.search_sorted(sorted_recipient, sorted_recipient, side="left")
        rank_sorted = pc.subtract(arange(len(rows)), pc.cast(first, pa.int64()))
        rank = take(rank_sorted, pc.sort_indices(order))
        scattered = pa.concat_arrays([rows, pc.indices_nonzero(pc.invert(counted))])
        values = pa.concat_arrays([rank, const(-1, self.n - len(rows), pa.int64())])
        return take(values, pc.sort_indices(scattered))

    def seikatsu_hogo(self) -> pa.Table:
        rows = pc.indices_nonzero(self.on_welfare)
        hh = take(self.hh, rows)
        stats = self.household_stats
        hid = self.households["hid"]
        size = take(stats["one_sum"], hh)
        head = take(self.head, hh)
        head_female = pc.equal(take(self.sex, head), 1)
        elderly = pc.and_(
            pc.equal(take(stats["working_sum"], hh), 0), pc.greater_equal(take(stats["age_max"], hh), 65)
        )
        lone_mother = pc.and_(
            pc.and_(pc.equal(take(stats["adult_sum"], hh), 1), pc.greater(take(stats["child_sum"], hh), 0)),
            pc.and_(head_female, pc.less(take(self.age, head), 65)),
        )
        u_kind = take(self.rng.by_id("welfare.kind", hid), hh)
        other_kind = where(
            pc.less(u_kind, 0.3), "障害者世帯", where(pc.less(u_kind, 0.6), "傷病者世帯", "その他の世帯")
        )
        kind = where(elderly, "高齢者世帯", where(lone_mother, "母子世帯", other_kind))
        housing = pc.less(take(self.rng.by_id("welfare.housing", hid), hh), 0.75)
        care = pc.and_(elderly, pc.less(u_kind, 0.3))
        school = take(stats["school_sum"], hh)
        aid = join(
            "生活扶助",
            where(housing, "・住宅扶助", ""),
            "・医療扶助",
            where(care, "・介護扶助", ""),
            where(pc.greater(school, 0), "・教育扶助", ""),
        )
        extra = pc.cast(pc.subtract(size, 1), pa.float64())
        monthly = pc.add(
            pc.add(75_000.0, pc.multiply(extra, 43_000.0)),
            pc.multiply(pc.cast(school, pa.float64()), 5_000.0),
        )
        monthly = pc.add(
            monthly,
            where(housing, pc.min_element_wise(pc.add(40_000.0, pc.multiply(extra, 8_000.0)), 56_000.0), 0.0),
        )
        monthly = pc.multiply(
            monthly, pc.add(0.9, pc.multiply(take(self.rng.by_id("welfare.amount", hid), hh), 0.2))
        )
        started = self._welfare_start(hh, head)
        name, _ = self.names
        address, _ = self.address("seikatsu_hogo", rows)
        case = join(
            pad(pc.add(take(self.households["ward"], hh), 1), 2),
            "-",
            pad(ids.scrambled(self.rng, "case", take(hid, hh), 6), 6),
        )
        return pa.table(
            {
                "宛名番号": take(self.atena, rows),
                "ケース番号": case,
                "世帯番号": take(self.setai, rows),
                "氏名": take(name, rows),
                "生年月日": self.birth("seikatsu_hogo", dirt.OTHER_BIRTH_FORMS, rows),
                "住所": address,
                "電話番号": take(self._phones(), hh),
                "保護開始日": self.event_date("seikatsu_hogo", started, take(hid, hh)),
                "世帯類型": kind,
                "扶助種別": aid,
                "保護費月額": text(pc.multiply(floor_int(pc.divide(monthly, 10.0)), 10)),
            }
        )

    def _welfare_start(self, hh: Array, head: Array) -> Array:
        hid = take(self.households["hid"], hh)
        years = pc.multiply(pc.power(self.rng.by_id("welfare.start", hid), 2.0), 15.0)
        start = pc.subtract(days(self.on), floor_int(pc.multiply(years, 365.25)))
        return pc.max_element_wise(start, pc.cast(take(self.people["since"], head), pa.int64()))

    def _phones(self) -> Array:
        """Per household row: a landline, a mobile number, or blank."""
        hid = self.households["hid"]
        u = self.rng.by_id("phone", hid)
        digits = pc.modulo(pc.cast(ids.scrambled(self.rng, "case", hid, 7), pa.int64()), 10_000_000)
        landline = join(
            "078-",
            pad(pc.add(pc.modulo(pc.divide(digits, 10_000), 800), 200), 3),
            "-",
            pad(pc.modulo(digits, 10_000), 4),
        )
        prefix = take(["090-", "080-", "070-"], floor_int(pc.multiply(self.rng.by_id("phone.kind", hid), 3)))
        mobile = join(
            prefix,
            pad(pc.add(pc.modulo(pc.divide(digits, 1_000), 9_000), 1_000), 4),
            "-",
            pad(pc.modulo(digits, 10_000), 4),
        )
        return where(pc.less(u, 0.2), "", where(pc.less(u, 0.65), landline, mobile))


BUILDERS: Final[dict[str, Callable[[Snapshot], pa.Table]]] = {
    "juki": Snapshot.juki,
    "kojin_juminzei": Snapshot.kojin_juminzei,
    "kokuho": Snapshot.kokuho,
    "kaigo": Snapshot.kaigo,
    "jido_teate": Snapshot.jido_teate,
    "seikatsu_hogo": Snapshot.seikatsu_hogo,
}


def _pick(column: Array, rows: Array | None) -> Array:
    return flat(column) if rows is None else take(column, rows)


def _bracket(values: Array, thresholds: tuple[tuple[int, str], ...], otherwise: str) -> Array:
    """The label of the first threshold (descending) that ``values`` reach, else ``otherwise``."""
    result: Array = const(otherwise, len(values), pa.string())
    for limit, label in reversed(thresholds):
        result = where(pc.greater_equal(values, limit), label, result)
    return result


def _certification_period(rng: Rng, pids: Array, on: dt.date) -> tuple[Array, Array]:
    """認定日 and 認定有効期間終了日: a period of 12–48 months that contains ``on``, ending on a month end."""
    n = len(pids)
    months = take(
        [m for m, _ in CARE_VALIDITY_MONTHS], rng.choice("validity", n, [w for _, w in CARE_VALIDITY_MONTHS])
    )
    span = pc.subtract(pc.multiply(pc.cast(months, pa.float64()), 30.44), 31.0)
    start = pc.subtract(days(on), floor_int(pc.multiply(rng.uniform("start", n), span)))
    start_date = pc.cast(pc.cast(start, pa.int32()), pa.date32())
    month_index = pc.add(
        pc.add(pc.multiply(pc.year(start_date), 12), pc.subtract(pc.month(start_date), 1)), months
    )
    first_after = _days_from_civil(pc.divide(month_index, 12), pc.add(pc.modulo(month_index, 12), 1), 1)
    end = pc.max_element_wise(pc.subtract(first_after, 1), days(on))
    return start, end


def _days_from_civil(year: Array, month: Array, day: int) -> Array:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm, vectorized)."""
    y = pc.subtract(year, pc.cast(pc.less_equal(month, 2), pa.int64()))
    era = pc.divide(y, 400)
    yoe = pc.subtract(y, pc.multiply(era, 400))
    shifted = where(pc.greater(month, 2), pc.subtract(month, 3), pc.add(month, 9))
    doy = pc.add(pc.divide(pc.add(pc.multiply(shifted, 153), 2), 5), day - 1)
    doe = pc.add(pc.subtract(pc.add(pc.multiply(yoe, 365), pc.divide(yoe, 4)), pc.divide(yoe, 100)), doy)
    return pc.subtract(pc.add(pc.multiply(era, 146_097), doe), 719_468)
