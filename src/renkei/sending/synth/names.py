"""Name pools: Faker ja_JP's names plus generation-typical and foreign names, sampled per person.

Faker ships 50 surnames (with their national counts) and about 50 given names. On their own they give a city of
1.5 million only 2,500 distinct names, so the pools are widened with more surnames (weights ESTIMATE, below
Faker's 50th), given names typical of each birth cohort, a few surnames written with CP932 extension characters
(髙橋, 山﨑, 德永 …: real exports contain them and they break strict Shift_JIS readers), and names of the
foreign communities (kanji for Korean and Chinese residents, alphabet with katakana for the others).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc
from faker.providers.person.ja_JP import Provider as FakerJa

from renkei.sending.synth.rng import Rng
from renkei.sending.synth.vec import Array, floor_int, join, take

Pair = tuple[str, str]  # (written, katakana)

_MORE_SURNAMES: tuple[tuple[str, str, int], ...] = (
    ("藤本", "フジモト", 52_000), ("西田", "ニシダ", 50_000), ("松井", "マツイ", 50_000),
    ("竹内", "タケウチ", 50_000), ("原田", "ハラダ", 50_000), ("小西", "コニシ", 45_000),
    ("上田", "ウエダ", 50_000), ("森本", "モリモト", 48_000), ("大西", "オオニシ", 48_000),
    ("山内", "ヤマウチ", 40_000), ("谷口", "タニグチ", 45_000), ("北村", "キタムラ", 42_000),
    ("今井", "イマイ", 42_000), ("内田", "ウチダ", 45_000), ("野村", "ノムラ", 45_000),
    ("岩崎", "イワサキ", 40_000), ("中西", "ナカニシ", 45_000), ("宮本", "ミヤモト", 48_000),
    ("平田", "ヒラタ", 38_000), ("石田", "イシダ", 45_000), ("松尾", "マツオ", 40_000),
    ("東", "ヒガシ", 35_000), ("堀", "ホリ", 30_000), ("辻", "ツジ", 35_000),
    ("浜田", "ハマダ", 35_000), ("坂口", "サカグチ", 30_000), ("久保", "クボ", 35_000),
    ("宮崎", "ミヤザキ", 40_000), ("杉本", "スギモト", 40_000), ("田村", "タムラ", 45_000),
    ("樋口", "ヒグチ", 30_000), ("増田", "マスダ", 35_000), ("中野", "ナカノ", 45_000),
    ("西川", "ニシカワ", 35_000), ("横山", "ヨコヤマ", 40_000), ("上野", "ウエノ", 38_000),
    ("岩田", "イワタ", 35_000), ("野口", "ノグチ", 35_000), ("丸山", "マルヤマ", 38_000),
    ("安田", "ヤスダ", 35_000), ("本田", "ホンダ", 35_000), ("小野", "オノ", 45_000),
    ("大野", "オオノ", 38_000), ("河野", "コウノ", 35_000), ("村田", "ムラタ", 40_000),
    ("和田", "ワダ", 40_000), ("高木", "タカギ", 38_000), ("島田", "シマダ", 35_000),
    ("桑原", "クワバラ", 25_000), ("尾崎", "オザキ", 28_000), ("吉川", "ヨシカワ", 35_000),
    ("森田", "モリタ", 45_000), ("原", "ハラ", 40_000), ("松下", "マツシタ", 35_000),
    ("奥田", "オクダ", 30_000), ("荒木", "アラキ", 32_000), ("田口", "タグチ", 32_000),
    ("永井", "ナガイ", 32_000), ("片山", "カタヤマ", 28_000), ("三宅", "ミヤケ", 25_000),
    ("酒井", "サカイ", 40_000), ("服部", "ハットリ", 35_000), ("武田", "タケダ", 38_000),
    ("柴田", "シバタ", 40_000), ("高田", "タカダ", 35_000), ("金子", "カネコ", 45_000),
    ("小山", "コヤマ", 35_000), ("福本", "フクモト", 22_000), ("寺田", "テラダ", 25_000),
)  # fmt: skip

# CP932-only spellings (NEC/IBM extension characters) of common names, at a small weight.
_EXTENSION_SURNAMES: tuple[tuple[str, str, int], ...] = (
    ("髙橋", "タカハシ", 9_000), ("髙田", "タカダ", 3_000), ("髙木", "タカギ", 3_000),
    ("山﨑", "ヤマサキ", 6_000), ("﨑山", "サキヤマ", 2_000), ("德永", "トクナガ", 3_000),
    ("濵田", "ハマダ", 2_000), ("宮﨑", "ミヤザキ", 2_500),
)  # fmt: skip

# Birth cohorts: born before 1950, 1950–1974, 1975–1999, 2000 and later.
COHORT_STARTS = (1950, 1975, 2000)

_OLD_MALE = (
    ("清", "キヨシ"), ("茂", "シゲル"), ("勇", "イサム"), ("博", "ヒロシ"), ("実", "ミノル"),
    ("正", "タダシ"), ("進", "ススム"), ("勝", "マサル"), ("武", "タケシ"), ("三郎", "サブロウ"),
    ("正雄", "マサオ"), ("昭", "アキラ"), ("豊", "ユタカ"), ("功", "イサオ"), ("義雄", "ヨシオ"),
)  # fmt: skip
_MID_MALE = (
    ("誠", "マコト"), ("浩二", "コウジ"), ("隆", "タカシ"), ("健二", "ケンジ"), ("哲也", "テツヤ"),
    ("和彦", "カズヒコ"), ("秀樹", "ヒデキ"), ("俊之", "トシユキ"), ("正樹", "マサキ"), ("浩一", "コウイチ"),
)  # fmt: skip
_YOUNG_MALE = (
    ("大輔", "ダイスケ"), ("健太", "ケンタ"), ("拓也", "タクヤ"), ("達也", "タツヤ"), ("雄太", "ユウタ"),
    ("翔", "ショウ"), ("大樹", "ダイキ"), ("駿", "シュン"), ("亮", "リョウ"), ("雄大", "ユウダイ"),
)  # fmt: skip
_CHILD_MALE = (
    ("蓮", "レン"), ("大翔", "ヒロト"), ("陽翔", "ハルト"), ("悠真", "ユウマ"), ("湊", "ミナト"),
    ("颯太", "ソウタ"), ("陽向", "ヒナタ"), ("樹", "イツキ"), ("悠人", "ユウト"), ("朝陽", "アサヒ"),
    ("結翔", "ユイト"), ("律", "リツ"), ("蒼", "アオイ"), ("碧", "アオイ"), ("奏太", "カナタ"),
)  # fmt: skip
_OLD_FEMALE = (
    ("和子", "カズコ"), ("幸子", "サチコ"), ("節子", "セツコ"), ("久子", "ヒサコ"), ("文子", "フミコ"),
    ("恵美子", "エミコ"), ("美代子", "ミヨコ"), ("静子", "シズコ"), ("信子", "ノブコ"), ("登美子", "トミコ"),
    ("清子", "キヨコ"), ("トシ子", "トシコ"), ("ハル", "ハル"), ("澄子", "スミコ"),
)  # fmt: skip
_MID_FEMALE = (
    ("恵子", "ケイコ"), ("洋子", "ヨウコ"), ("裕子", "ユウコ"), ("久美子", "クミコ"), ("由美子", "ユミコ"),
    ("真由美", "マユミ"), ("智子", "トモコ"), ("京子", "キョウコ"), ("典子", "ノリコ"), ("純子", "ジュンコ"),
)  # fmt: skip
_YOUNG_FEMALE = (
    ("愛", "アイ"), ("彩", "アヤ"), ("麻衣", "マイ"), ("沙織", "サオリ"), ("美穂", "ミホ"),
    ("恵", "メグミ"), ("友美", "トモミ"), ("由佳", "ユカ"), ("千尋", "チヒロ"), ("瞳", "ヒトミ"),
)  # fmt: skip
_CHILD_FEMALE = (
    ("陽菜", "ヒナ"), ("芽依", "メイ"), ("葵", "アオイ"), ("凛", "リン"), ("結菜", "ユイナ"),
    ("莉子", "リコ"), ("紬", "ツムギ"), ("美桜", "ミオ"), ("咲良", "サクラ"), ("さくら", "サクラ"),
    ("花", "ハナ"), ("心春", "コハル"), ("結愛", "ユア"), ("杏", "アン"), ("澪", "ミオ"),
)  # fmt: skip

# Faker's given names are mostly of the 1950–1999 cohorts; these few are older or newer in feel.
_FAKER_OLD = {"千代", "花子", "稔", "治", "浩", "充"}
_FAKER_CHILD = {"結衣", "七夏", "零", "拓真", "翼"}

# Foreign name pools: (surnames, male given names, female given names), each (written, katakana).
_FOREIGN: dict[str, tuple[tuple[Pair, ...], tuple[Pair, ...], tuple[Pair, ...]]] = {
    "korean": (
        (("金", "キム"), ("李", "イ"), ("朴", "パク"), ("崔", "チェ"), ("鄭", "チョン"), ("姜", "カン"),
         ("趙", "チョ"), ("尹", "ユン"), ("張", "チャン"), ("韓", "ハン"), ("申", "シン"), ("呉", "オ")),
        (("成浩", "ソンホ"), ("英洙", "ヨンス"), ("正一", "ジョンイル"), ("東勲", "ドンフン"),
         ("相佑", "サンウ"), ("民俊", "ミンジュン"), ("光男", "ミツオ"), ("泰植", "テシク")),
        (("英姫", "ヨンヒ"), ("順子", "スンジャ"), ("美英", "ミヨン"), ("恵珍", "ヘジン"),
         ("知恩", "ジウン"), ("秀賢", "スヒョン"), ("玉順", "オクスン"), ("春子", "ハルコ")),
    ),
    "chinese": (
        (("王", "ワン"), ("李", "リ"), ("張", "チャン"), ("劉", "リュウ"), ("陳", "チン"), ("楊", "ヤン"),
         ("黄", "ホアン"), ("趙", "チャオ"), ("呉", "ウー"), ("周", "チョウ"), ("林", "リン"), ("徐", "シュ")),
        (("偉", "ウェイ"), ("強", "チャン"), ("磊", "レイ"), ("軍", "ジュン"), ("傑", "ジエ"),
         ("浩然", "ハオラン"), ("宇航", "ユーハン"), ("建国", "ジェングオ")),
        (("芳", "ファン"), ("敏", "ミン"), ("静", "ジン"), ("麗", "リー"), ("秀英", "シウイン"),
         ("雪", "シュエ"), ("梅", "メイ"), ("麗華", "リーファ")),
    ),
    "vietnamese": (
        (("NGUYEN", "グエン"), ("TRAN", "チャン"), ("LE", "レ"), ("PHAM", "ファム"), ("HOANG", "ホアン"),
         ("VU", "ヴー"), ("DANG", "ダン"), ("BUI", "ブイ"), ("DO", "ドー")),
        (("VAN NAM", "ヴァン　ナム"), ("VAN HUNG", "ヴァン　フン"), ("DUC MINH", "ドゥック　ミン"),
         ("VAN TUAN", "ヴァン　トゥアン"), ("THANH LONG", "タイン　ロン"), ("QUANG HUY", "クアン　フイ")),
        (("THI LAN", "ティ　ラン"), ("THI HOA", "ティ　ホア"), ("THI THU", "ティ　トゥ"),
         ("THUY LINH", "トゥイ　リン"), ("THI HUONG", "ティ　フオン"), ("NGOC MAI", "ゴック　マイ")),
    ),
    "filipino": (
        (("SANTOS", "サントス"), ("REYES", "レイエス"), ("CRUZ", "クルス"), ("GARCIA", "ガルシア"),
         ("BAUTISTA", "バウティスタ"), ("MENDOZA", "メンドーサ")),
        (("JOSE", "ホセ"), ("MARK", "マーク"), ("JOHN PAUL", "ジョン　ポール"), ("RAMON", "ラモン")),
        (("MARIA", "マリア"), ("ANGELICA", "アンジェリカ"), ("MARY JOY", "メリー　ジョイ"), ("ROSALIE", "ロザリー")),
    ),
    "nepali": (
        (("GURUNG", "グルン"), ("TAMANG", "タマン"), ("SHRESTHA", "シュレスタ"), ("RAI", "ライ"),
         ("THAPA", "タパ"), ("MAGAR", "マガル")),
        (("RAM", "ラム"), ("BIKASH", "ビカス"), ("SUNIL", "スニル"), ("PRAKASH", "プラカシュ")),
        (("SITA", "シータ"), ("GITA", "ギータ"), ("ANITA", "アニタ"), ("SARITA", "サリタ")),
    ),
    "indonesian": (
        (("SANTOSO", "サントソ"), ("WIJAYA", "ウィジャヤ"), ("SAPUTRA", "サプトラ"), ("HIDAYAT", "ヒダヤット")),
        (("BUDI", "ブディ"), ("AGUS", "アグス"), ("RIZKY", "リズキ"), ("ADI", "アディ")),
        (("DEWI", "デウィ"), ("SITI", "シティ"), ("PUTRI", "プトゥリ"), ("AYU", "アユ")),
    ),
    "indian": (
        (("SHARMA", "シャルマ"), ("PATEL", "パテル"), ("SINGH", "シン"), ("KUMAR", "クマール"),
         ("GUPTA", "グプタ"), ("MEHTA", "メータ")),
        (("RAJ", "ラジ"), ("AMIT", "アミット"), ("RAHUL", "ラフル"), ("VIKRAM", "ヴィクラム")),
        (("PRIYA", "プリヤ"), ("ANJALI", "アンジャリ"), ("NEHA", "ネハ"), ("KAVYA", "カヴィヤ")),
    ),
    "western": (
        (("SMITH", "スミス"), ("JOHNSON", "ジョンソン"), ("BROWN", "ブラウン"), ("WILLIAMS", "ウィリアムズ"),
         ("JONES", "ジョーンズ"), ("MILLER", "ミラー"), ("SILVA", "シルバ"), ("OLIVEIRA", "オリベイラ")),
        (("JOHN", "ジョン"), ("MICHAEL", "マイケル"), ("DAVID", "デイビッド"), ("JAMES", "ジェームズ"),
         ("LUCAS", "ルーカス")),
        (("EMILY", "エミリー"), ("SARAH", "サラ"), ("JESSICA", "ジェシカ"), ("ANNA", "アンナ"),
         ("JULIA", "ジュリア")),
    ),
}  # fmt: skip

# Nationality (calibration.NATIONALITY_MIX names, plus 日本) → name pool.
NAME_GROUP_OF_NATIONALITY = {
    "日本": "japanese",
    "韓国": "korean",
    "朝鮮": "korean",
    "中国": "chinese",
    "台湾": "chinese",
    "ベトナム": "vietnamese",
    "フィリピン": "filipino",
    "ネパール": "nepali",
    "インドネシア": "indonesian",
    "インド": "indian",
    "米国": "western",
    "英国": "western",
    "ブラジル": "western",
    "その他": "western",
}
GROUPS = ("japanese", *_FOREIGN)
_ALPHABET_GROUPS = {g for g in GROUPS if g not in {"japanese", "korean", "chinese"}}


@dataclass(frozen=True)
class NamePools:
    """Flat tables of names with per-group offsets, so a vector of indices picks names in one ``take``."""

    surnames: tuple[Pair, ...]
    surname_weights: tuple[tuple[float, ...], ...]  # per group, padded to the same width
    surname_offset: tuple[int, ...]  # per group
    given: tuple[Pair, ...]
    given_offset: tuple[int, ...]  # per (group, sex, cohort) key
    given_size: tuple[int, ...]


def _japanese_surnames() -> list[tuple[str, str, float]]:
    pairs = [(k[0], k[1], float(v)) for k, v in FakerJa.last_name_pairs.items()]
    return pairs + [(a, b, float(c)) for a, b, c in _MORE_SURNAMES + _EXTENSION_SURNAMES]


def _japanese_given(sex: int) -> list[list[Pair]]:
    faker = FakerJa.first_name_male_pairs if sex == 0 else FakerJa.first_name_female_pairs
    old, mid, young, child = (
        (_OLD_MALE, _MID_MALE, _YOUNG_MALE, _CHILD_MALE)
        if sex == 0
        else (_OLD_FEMALE, _MID_FEMALE, _YOUNG_FEMALE, _CHILD_FEMALE)
    )
    faker_pairs = [(p[0], p[1]) for p in faker]
    faker_old = [p for p in faker_pairs if p[0] in _FAKER_OLD]
    faker_child = [p for p in faker_pairs if p[0] in _FAKER_CHILD]
    faker_rest = [p for p in faker_pairs if p[0] not in _FAKER_OLD | _FAKER_CHILD]
    half = len(faker_rest) // 2
    return [
        [*old, *faker_old],
        [*mid, *faker_rest[:half]],
        [*young, *faker_rest[half:]],
        [*child, *faker_child],
    ]


@cache
def name_pools() -> NamePools:
    surnames: list[Pair] = []
    weights: list[list[float]] = []
    offsets: list[int] = []
    for group in GROUPS:
        entries = (
            _japanese_surnames() if group == "japanese" else [(a, b, 1.0) for a, b in _FOREIGN[group][0]]
        )
        offsets.append(len(surnames))
        surnames += [(a, b) for a, b, _ in entries]
        weights.append([w for _, _, w in entries])
    width = max(len(w) for w in weights)
    padded = tuple(tuple(w + [0.0] * (width - len(w))) for w in weights)

    given: list[Pair] = []
    given_offset: list[int] = []
    given_size: list[int] = []
    for group in GROUPS:
        for sex in (0, 1):
            cohorts = _japanese_given(sex) if group == "japanese" else [list(_FOREIGN[group][1 + sex])] * 4
            for pool in cohorts:
                given_offset.append(len(given))
                given_size.append(len(pool))
                given += pool
    return NamePools(
        tuple(surnames), padded, tuple(offsets), tuple(given), tuple(given_offset), tuple(given_size)
    )


def draw_surnames(rng: Rng, name: str, groups: Array) -> Array:
    """A surname index (into ``name_pools().surnames``) per element, drawn within each element's group."""
    pools = name_pools()
    within = rng.choice_by_group(name, groups, pools.surname_weights)
    return pc.add(within, take(pools.surname_offset, groups))


def draw_given(rng: Rng, name: str, groups: Array, sexes: Array, birth_years: Array) -> Array:
    """A given-name index per element, typical of the element's group, sex and birth cohort."""
    pools = name_pools()
    cohorts = pc.cast(
        pc.search_sorted(pa.array(COHORT_STARTS, pa.int64()), birth_years, side="right"), pa.int64()
    )
    keys = pc.add(pc.multiply(pc.add(pc.multiply(groups, 2), sexes), len(COHORT_STARTS) + 1), cohorts)
    size = take(pools.given_size, keys)
    within = floor_int(pc.multiply(rng.uniform(name, len(groups)), size))
    return pc.add(within, take(pools.given_offset, keys))


def full_names(surname_idx: Array, given_idx: Array, groups: Array) -> tuple[Array, Array]:
    """氏名 and 氏名カナ: family and given name separated by a full-width space (a space for alphabet names)."""
    pools = name_pools()
    s_written = take([p[0] for p in pools.surnames], surname_idx)
    s_kana = take([p[1] for p in pools.surnames], surname_idx)
    g_written = take([p[0] for p in pools.given], given_idx)
    g_kana = take([p[1] for p in pools.given], given_idx)
    alphabet = pc.is_in(take(list(GROUPS), groups), pa.array(sorted(_ALPHABET_GROUPS)))
    separator = pc.if_else(alphabet, " ", "\u3000")
    return join(s_written, separator, g_written), join(s_kana, "\u3000", g_kana)
