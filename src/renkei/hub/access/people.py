"""Designated users (指名職員) and their roles. Nobody has an account unless an admin designates them."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from renkei.hub.audit import UTCDateTime
from renkei.hub.catalog import Department, utcnow
from renkei.hub.db import Base


class Role(enum.StrEnum):
    """What a designated user may do. One role per user; a person with two duties gets two accounts."""

    ADMIN = "admin"  # 政策調査課: designates users, registers terminals and cards, runs the hub
    STEWARD = "steward"  # データ管理者 of a department: approves use of that department's datasets
    ANALYST = "analyst"  # 分析担当: applies for data and analyses it
    AUDITOR = "auditor"  # 監査担当: reads the audit log, nothing else


ROLE_LABELS_JA = {
    Role.ADMIN: "基盤管理者（政策調査課）",
    Role.STEWARD: "データ管理者（所管課）",
    Role.ANALYST: "分析担当",
    Role.AUDITOR: "監査担当",
}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    login_id: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    designated_by: Mapped[str] = mapped_column(String(64), default="")

    department: Mapped[Department] = relationship()
