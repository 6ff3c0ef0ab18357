"""Every number the synthetic city is calibrated to, in one place.

Published figures are copied from ``/work/shared/reference/kobe-figures.md``; each constant names its table (§…).
Values marked ESTIMATE are our own plausible choices where no Kobe figure exists; ``docs/synthetic-city.md``
lists them. Wards are always in ``WARDS`` order (the 団体コード order of :data:`renkei.sending.towns.KOBE_WARDS`).
"""

from __future__ import annotations

from typing import Final

WARDS: Final = ("東灘区", "灘区", "兵庫区", "長田区", "須磨区", "垂水区", "北区", "中央区", "西区")

# 5-year age bands 0-4 … 95-99, 100+ (the last band is open).
BAND_STARTS: Final = tuple(range(0, 105, 5))
OLDEST_AGE: Final = 109

# §1b: 住基 population on 2021-01-01 (total, male, female) and 住基 households, per ward.
WARD_POPULATION: Final = {
    "東灘区": 213_641,
    "灘区": 132_905,
    "兵庫区": 109_214,
    "長田区": 97_125,
    "須磨区": 160_361,
    "垂水区": 219_694,
    "北区": 214_703,
    "中央区": 138_898,
    "西区": 240_294,
}
WARD_MALE: Final = {
    "東灘区": 100_113,
    "灘区": 61_973,
    "兵庫区": 53_300,
    "長田区": 46_570,
    "須磨区": 74_669,
    "垂水区": 103_420,
    "北区": 102_402,
    "中央区": 64_678,
    "西区": 116_514,
}
WARD_HOUSEHOLDS: Final = {
    "東灘区": 102_604,
    "灘区": 67_950,
    "兵庫区": 64_459,
    "長田区": 55_360,
    "須磨区": 79_523,
    "垂水区": 104_968,
    "北区": 98_665,
    "中央区": 83_715,
    "西区": 107_400,
}
CITY_POPULATION: Final = 1_526_835  # §1a 住基 2021-01-01

# §2a: city 5-year bands by sex, 住基 2021-01-01 (male, female).
CITY_BANDS_MALE: Final = (
    27_861, 31_854, 33_983, 34_886, 39_630, 36_276, 38_685, 43_395, 48_669, 59_629, 53_328,
    48_015, 42_846, 45_066, 53_286, 37_416, 26_107, 15_794, 5_651, 1_166, 96,
)  # fmt: skip
CITY_BANDS_FEMALE: Final = (
    26_326, 30_308, 32_261, 33_498, 40_091, 38_014, 39_779, 45_412, 52_062, 63_014, 55_805,
    51_399, 46_904, 49_691, 61_188, 48_011, 38_848, 29_844, 15_154, 4_818, 769,
)  # fmt: skip

# §2d (male) and §2e (female): per-ward 5-year bands, 住基 2021-01-01. One row per band, columns in WARDS order.
_MALE_ROWS: Final = (
    (4_376, 2_656, 1_801, 1_441, 2_921, 4_408, 3_525, 2_650, 4_083),
    (4_982, 3_058, 1_776, 1_586, 3_155, 5_334, 4_363, 2_355, 5_245),
    (5_173, 2_999, 1_910, 1_784, 3_232, 5_344, 5_225, 2_169, 6_147),
    (5_207, 3_090, 2_090, 1_834, 3_479, 5_128, 5_488, 2_186, 6_384),
    (5_778, 3_725, 3_400, 2_566, 3_543, 4_902, 5_148, 4_142, 6_426),
    (4_860, 3_233, 3_765, 2_742, 3_147, 4_334, 4_136, 4_878, 5_181),
    (5_131, 3_468, 3_514, 2_481, 3_626, 5_169, 4_466, 4_973, 5_857),
    (5_998, 3_917, 3_423, 2_601, 4_171, 6_310, 5_412, 4_990, 6_573),
    (6_992, 4_392, 3_563, 2_865, 4_763, 7_003, 6_409, 4_985, 7_697),
    (8_575, 5_431, 4_344, 3_715, 5_804, 8_393, 8_474, 5_423, 9_470),
    (8_071, 4_798, 3_935, 3_476, 5_377, 7_242, 7_476, 4_730, 8_223),
    (7_076, 4_125, 3_515, 3_245, 4_934, 6_474, 6_741, 4_186, 7_719),
    (5_901, 3_274, 2_979, 2_803, 4_649, 5_864, 6_333, 3_446, 7_597),
    (5_432, 3_287, 3_226, 3_191, 4_839, 6_264, 6_865, 3_457, 8_505),
    (6_330, 3_906, 3_782, 3_866, 6_318, 7_588, 8_261, 4_038, 9_197),
    (4_226, 2_723, 2_659, 2_719, 4_667, 5_717, 6_304, 2_637, 5_764),
    (3_095, 1_930, 1_925, 1_990, 3_333, 4_164, 4_405, 1_744, 3_521),
    (1_959, 1_292, 1_186, 1_188, 1_905, 2_680, 2_354, 1_177, 2_053),
    (767, 553, 416, 373, 658, 907, 859, 406, 712),
    (174, 110, 85, 95, 140, 177, 140, 96, 149),
    (10, 6, 6, 9, 8, 18, 18, 10, 11),
)
_FEMALE_ROWS: Final = (
    (4_099, 2_592, 1_781, 1_357, 2_697, 4_126, 3_351, 2_566, 3_757),
    (4_655, 2_870, 1_719, 1_459, 3_069, 4_923, 4_260, 2_353, 5_000),
    (4_894, 2_926, 1_801, 1_668, 3_186, 5_030, 4_992, 2_108, 5_656),
    (5_108, 2_926, 1_980, 1_833, 3_352, 4_847, 5_168, 2_213, 6_071),
    (5_935, 3_665, 3_392, 2_438, 3_640, 4_820, 5_130, 4_862, 6_209),
    (5_238, 3_600, 3_632, 2_338, 3_452, 4_473, 4_366, 5_666, 5_249),
    (5_693, 3_654, 3_269, 2_331, 4_064, 5_387, 4_630, 5_254, 5_497),
    (6_779, 4_299, 3_264, 2_440, 4_426, 6_745, 5_543, 5_264, 6_652),
    (7_776, 5_070, 3_338, 2_736, 5_204, 7_418, 6_872, 5_468, 8_180),
    (9_853, 5_982, 4_199, 3_552, 6_177, 8_940, 8_641, 6_028, 9_642),
    (8_867, 5_130, 3_641, 3_378, 5_782, 7_679, 7_726, 5_047, 8_555),
    (7_562, 4_366, 3_213, 3_174, 5_496, 7_229, 7_294, 4_457, 8_608),
    (6_407, 3_656, 2_937, 2_888, 5_241, 6_578, 6_891, 3_633, 8_673),
    (6_218, 3_802, 3_023, 3_218, 5_748, 7_156, 7_613, 3_848, 9_065),
    (7_491, 4_681, 3_976, 4_295, 7_539, 9_212, 9_692, 4_654, 9_648),
    (5_736, 3_747, 3_533, 3_789, 6_092, 7_551, 7_527, 3_571, 6_465),
    (4_695, 3_270, 3_081, 3_403, 4_806, 6_215, 5_678, 3_110, 4_590),
    (3_829, 2_711, 2_460, 2_581, 3_428, 4_754, 4_019, 2_455, 3_607),
    (1_971, 1_488, 1_206, 1_247, 1_680, 2_294, 2_057, 1_236, 1_975),
    (625, 440, 398, 362, 534, 768, 738, 363, 590),
    (97, 57, 71, 68, 79, 129, 113, 64, 91),
)
WARD_BANDS_MALE: Final = {w: tuple(row[i] for row in _MALE_ROWS) for i, w in enumerate(WARDS)}
WARD_BANDS_FEMALE: Final = {w: tuple(row[i] for row in _FEMALE_ROWS) for i, w in enumerate(WARDS)}

# §4b: calendar-2020 flows per ward (births, deaths, 転入 and 転出 including moves between wards).
WARD_BIRTHS: Final = {
    "東灘区": 1_555, "灘区": 1_009, "兵庫区": 811, "長田区": 542, "須磨区": 1_070,
    "垂水区": 1_423, "北区": 1_199, "中央区": 1_146, "西区": 1_345,
}  # fmt: skip
CITY_DEATHS: Final = 16_164  # §4b city row (10.6 ‰); ward differences follow from the age structure
WARD_IN_MIGRANTS: Final = {
    "東灘区": 10_825, "灘区": 7_388, "兵庫区": 8_055, "長田区": 5_289, "須磨区": 6_895,
    "垂水区": 7_714, "北区": 7_111, "中央区": 13_468, "西区": 8_303,
}  # fmt: skip
WARD_OUT_MIGRANTS: Final = {
    "東灘区": 11_136, "灘区": 7_346, "兵庫区": 7_213, "長田区": 5_126, "須磨区": 6_616,
    "垂水区": 8_247, "北区": 7_377, "中央区": 11_645, "西区": 9_117,
}  # fmt: skip
# §4a (2017, Kobe's own split): share of 転入 / 転出 that cross the city boundary; the rest move between wards.
IN_FROM_OUTSIDE_SHARE: Final = 51_565 / 79_343
OUT_TO_OUTSIDE_SHARE: Final = 49_746 / 78_703
# §4a 2020: 転入 from abroad 5,484 of 75,048.
IN_FROM_ABROAD_SHARE: Final = 5_484 / 75_048
# ESTIMATE: share of foreign residents among people moving into the city (they are 3 % of residents).
ARRIVAL_FOREIGN_SHARE: Final = 0.12
# ESTIMATE: moves inside a ward (転居) per person-year; the tables count only moves across ward boundaries.
INTRA_WARD_MOVE_RATE: Final = 0.030

# §6b: foreign residents per ward, 住基 2021-01-01.
WARD_FOREIGN: Final = {
    "東灘区": 6_264, "灘区": 4_285, "兵庫区": 6_217, "長田区": 7_055, "須磨区": 3_503,
    "垂水区": 2_690, "北区": 2_324, "中央区": 12_947, "西区": 3_164,
}  # fmt: skip
# ESTIMATE (no Kobe table in the reference): nationality mix of foreign residents; older residents are mostly
# 韓国・朝鮮 (特別永住者), younger ones Vietnamese and Chinese. (nationality, weight if head < 45, weight if 45+)
NATIONALITY_MIX: Final = (
    ("韓国", 0.12, 0.55),
    ("朝鮮", 0.01, 0.05),
    ("中国", 0.30, 0.22),
    ("ベトナム", 0.28, 0.03),
    ("台湾", 0.03, 0.03),
    ("フィリピン", 0.05, 0.03),
    ("ネパール", 0.05, 0.005),
    ("インドネシア", 0.04, 0.005),
    ("インド", 0.03, 0.02),
    ("米国", 0.03, 0.03),
    ("英国", 0.01, 0.01),
    ("ブラジル", 0.01, 0.01),
    ("その他", 0.04, 0.04),
)

# §4b persons per 住基 household, per ward, follow from WARD_POPULATION / WARD_HOUSEHOLDS. §3: one-person
# households were 39.8 % of 一般世帯 in 2015; our share follows from the ward targets (measured in the docs).

# §5a: 要介護・要支援認定者 by ward and level, 2016-12-31, and certified ÷ 65+ per ward.
CARE_LEVELS: Final = ("要支援1", "要支援2", "要介護1", "要介護2", "要介護3", "要介護4", "要介護5")
WARD_CARE_BY_LEVEL: Final = {
    "東灘区": (2_382, 1_922, 1_606, 1_413, 1_024, 1_108, 760),
    "灘区": (1_411, 1_474, 1_082, 1_039, 816, 804, 671),
    "兵庫区": (1_553, 1_518, 1_107, 1_110, 904, 789, 615),
    "長田区": (1_458, 1_720, 1_094, 1_143, 888, 851, 634),
    "須磨区": (1_944, 2_104, 1_294, 1_392, 1_138, 991, 769),
    "垂水区": (2_601, 2_548, 1_843, 1_749, 1_439, 1_323, 1_030),
    "北区": (2_153, 2_088, 1_724, 1_654, 1_326, 1_304, 1_076),
    "中央区": (1_309, 1_601, 956, 1_052, 808, 756, 574),
    "西区": (1_888, 2_148, 1_610, 1_717, 1_384, 1_216, 937),
}
WARD_CARE_65_POPULATION: Final = {
    "東灘区": 50_090, "灘区": 33_518, "兵庫区": 31_665, "長田区": 32_667, "須磨区": 50_305,
    "垂水区": 63_891, "北区": 63_370, "中央区": 31_568, "西区": 58_771,
}  # fmt: skip
# ESTIMATE: relative certification rate by age (shape only; scaled per ward to the §5a ratio). Roughly the
# national 認定率 by age group: steep from 75 on.
CARE_RATE_BY_AGE: Final = (
    (65, 0.029), (70, 0.058), (75, 0.126), (80, 0.262), (85, 0.48), (90, 0.71), (95, 0.89),
)  # fmt: skip
CARE_RATE_40_64: Final = 0.0035  # ESTIMATE: 第2号被保険者 (特定疾病) certification rate
# ESTIMATE: mean monthly 給付費 (yen) by level; 15 % of certified people use no service in a month.
CARE_MONTHLY_BENEFIT: Final = (25_000, 38_000, 90_000, 125_000, 185_000, 225_000, 265_000)
CARE_NO_SERVICE_SHARE: Final = 0.15

# §5e: 個人市民税 FY2015 — 683,972 taxpayers (均等割), 44.5 % of the 2015 census population.
TAXPAYERS: Final = 683_972
TAXPAYER_SHARE: Final = TAXPAYERS / 1_537_272
TAX_KINTOUWARI_ONLY_SHARE: Final = 35_926 / TAXPAYERS
TAX_SPECIAL_COLLECTION_SHARE: Final = 428_294 / TAXPAYERS  # 特別徴収 (給与)
TAX_PENSION_COLLECTION_SHARE: Final = 112_681 / TAXPAYERS  # 年金特徴
# ESTIMATE: 均等割 (市民税 3,500 + 県民税 1,000 + 県民緑税 800 + 復興特別 500) and the 所得割 rate of a
# 政令指定都市 (市 8 % + 県 2 %).
KINTOUWARI: Final = 5_800
SHOTOKUWARI_RATE: Final = 0.10

# §5b (FALLBACK/ESTIMATE): 国保 covers about 18–21 % of residents; we target the middle.
KOKUHO_SHARE: Final = 0.195
# Kobe's 国保 保険者番号: 都道府県 28 + 保険者別 001 + 検証番号 (domain.md §3.2 rule) = 280016.
KOKUHO_INSURER_BODY: Final = "28001"

# §5c ESTIMATE: 生活保護 about 3 % of persons, concentrated in 長田, 兵庫, 中央 (relative household weights).
WELFARE_SHARE: Final = 0.030
WARD_WELFARE_WEIGHT: Final = {
    "東灘区": 0.45, "灘区": 0.9, "兵庫区": 2.1, "長田区": 2.6, "須磨区": 1.0,
    "垂水区": 0.7, "北区": 0.55, "中央区": 1.7, "西区": 0.55,
}  # fmt: skip

# §5d FALLBACK: about 11 % of 児童手当 children are paid the 特例給付 (high-income recipient).
CHILD_ALLOWANCE_SPECIAL_SHARE: Final = 0.11

# ESTIMATE: share of households living in flats (方書 filled in), per ward.
WARD_FLAT_SHARE: Final = {
    "東灘区": 0.62, "灘区": 0.62, "兵庫区": 0.6, "長田区": 0.5, "須磨区": 0.5,
    "垂水区": 0.5, "北区": 0.35, "中央区": 0.78, "西区": 0.4,
}  # fmt: skip
