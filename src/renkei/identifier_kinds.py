"""The kinds of 個人識別符号 a dataset spec can declare, shared by both sides.

The spec (read by the sending side and by the hub's catalog) names these kinds; the check digits and the
leftover scan are in :mod:`renkei.identifiers`, also shared. Keeping both outside ``sending/`` lets the hub load
specs and scan what it imports without loading any sending-side module.
"""

from __future__ import annotations

from enum import StrEnum


class IdentifierKind(StrEnum):
    """Kinds of 個人識別符号 a dataset spec can declare for a column (施行令1条, 規則3条・4条)."""

    MY_NUMBER = "my_number"
    JUMINHYO_CODE = "juminhyo_code"
    KISO_NENKIN = "kiso_nenkin"
    PASSPORT = "passport"
    DRIVER_LICENSE = "driver_license"
    HEALTH_INSURANCE = "health_insurance"
    CARE_INSURANCE = "care_insurance"
    ZAIRYU_CARD = "zairyu_card"
    OTHER = "other"


LABELS_JA: dict[IdentifierKind, str] = {
    IdentifierKind.MY_NUMBER: "個人番号",
    IdentifierKind.JUMINHYO_CODE: "住民票コード",
    IdentifierKind.KISO_NENKIN: "基礎年金番号",
    IdentifierKind.PASSPORT: "旅券番号",
    IdentifierKind.DRIVER_LICENSE: "運転免許証番号",
    IdentifierKind.HEALTH_INSURANCE: "保険者番号・被保険者記号番号",
    IdentifierKind.CARE_INSURANCE: "介護保険被保険者番号",
    IdentifierKind.ZAIRYU_CARD: "在留カード番号",
    IdentifierKind.OTHER: "その他",
}
