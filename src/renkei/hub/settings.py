"""The hub's settings, declared once: ``<home>/hub.toml``, then ``RENKEI_*`` environment variables, validated and
frozen (:func:`load_settings`; :class:`renkei.hub.home.Hub` loads them at start-up as ``hub.settings``).

Each setting is a field of one section model below, with its default, its Japanese and English help, its bounds
and its environment variable (``RENKEI_<SECTION>_<KEY>`` unless a field names an older one). :data:`SETTINGS`
lists them all; docs/settings.md has the same table, and a test keeps the two in step. An environment variable
wins over the file; an empty one counts as unset. A value the model refuses is an error at start-up naming the
setting and where it came from (the file and line, or the variable), never silently replaced by a default.
Values are never repeated in errors: the database URL may hold a password.

``hub.toml``::

    [database]
    url = "postgresql+psycopg://renkei@db.example/renkei"

    [sessions]
    idle_timeout_minutes = 20

    [disclosure]              # the hub-wide default policy; <home>/disclosure.toml may refine it per dataset
    threshold = 20

Secrets are not settings: the KEK (``RENKEI_KEK``) and the console's ``RENKEI_PASSWORD`` / ``RENKEI_TOTP`` are
read where they are used and never from a file.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from renkei.errors import Location, RenkeiError
from renkei.hub.disclosure.policy import DisclosurePolicy
from renkei.package import MAX_PAYLOAD_BYTES

SETTINGS_FILE = "hub.toml"
SAME_USER_ENV = "RENKEI_WORKSPACE_SAME_USER"
ENV_PREFIX = "RENKEI_"
MIN_HSTS_SECONDS = 365 * 24 * 3600  # ASVS v5.0.0-3.4.1: at least one year
HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")
_HOSTNAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(RenkeiError):
    """A setting in ``hub.toml`` or the environment is not valid; the hub does not start."""


def _setting(default: Any, ja: str, en: str, *, env: str = "", **bounds: Any) -> Any:
    """A field of the table: its default, its help (Japanese first), its bounds, and an older variable name."""
    return Field(default, description=en, json_schema_extra={"ja": ja, "env": env}, **bounds)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str = _setting(
        "",
        "カタログのデータベース URL（空ならホームの catalog.db、SQLite）。例: postgresql+psycopg://user@host/db",
        "the catalog database's URL; empty: catalog.db in the home (SQLite). E.g. postgresql+psycopg://user@host/db",
    )

    @field_validator("url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        if not url:
            return url
        try:
            driver = make_url(url).drivername
        except ArgumentError:
            raise ValueError("not a database URL") from None
        if driver.split("+")[0] not in ("sqlite", "postgresql"):
            raise ValueError("the hub runs on SQLite or PostgreSQL")
        return url


class KeySettings(_Section):
    kms: str = _setting(
        "",
        "外部の鍵管理サービスのプラグイン「パッケージ.モジュール:関数」（空なら RENKEI_KEK か kek.key）",
        "KMS plug-in as package.module:factory; empty: the KEK comes from RENKEI_KEK or kek.key in the home",
        env="RENKEI_KMS",
    )  # its form is checked where the plug-in is loaded (renkei.hub.keys.load_kms_plugin), as the KEK is


class SessionSettings(_Section):
    idle_timeout_minutes: int = _setting(
        30,
        "操作がないまま続くセッションの上限（分）",
        "a session ends after this many idle minutes",
        ge=1,
        le=24 * 60,
    )
    absolute_timeout_hours: int = _setting(
        12,
        "ログインから強制終了までの上限（時間）",
        "a session ends this many hours after login",
        ge=1,
        le=7 * 24,
    )

    @model_validator(mode="after")
    def _idle_within_absolute(self) -> SessionSettings:
        if self.idle_timeout_minutes > self.absolute_timeout_hours * 60:
            raise ValueError("idle_timeout_minutes must not exceed absolute_timeout_hours")
        return self

    @property
    def idle(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.idle_timeout_minutes)

    @property
    def absolute(self) -> dt.timedelta:
        return dt.timedelta(hours=self.absolute_timeout_hours)


class QuotaSettings(_Section):
    """What a user's download limits start from when an admin first sets one (no row: no downloads at all)."""

    may_download: bool = _setting(
        False, "新しい利用者にダウンロードを許すか", "whether a user may download before an admin says so"
    )
    files_per_day: int = _setting(5, "1日のファイル数の上限（既定値）", "files a day, by default", ge=0)
    rows_per_file: int = _setting(
        10_000, "1ファイルの行数の上限（既定値）", "rows per file, by default", ge=0
    )
    bytes_per_month: int = _setting(
        100 * 1024 * 1024, "1か月のバイト数の上限（既定値）", "bytes a month, by default", ge=0
    )


class ImportSettings(_Section):
    max_payload_bytes: int = _setting(
        MAX_PAYLOAD_BYTES,
        "受け入れるパッケージの中身の上限（バイト。形式の上限 32 GiB 以下）",
        "largest package payload accepted, in bytes (at most the format's 32 GiB)",
        ge=1,
        le=MAX_PAYLOAD_BYTES,
    )


class RiskSettings(_Section):
    """The re-identification risk report and the linkage coverage computed at import (docs/risk.md)."""

    k: int = _setting(
        5,
        "この人数未満の同値類の記録を「リスクあり」とする（検察官リスク 1/k を超える）",
        "a record in an equivalence class smaller than this is at risk (prosecutor risk above 1/k)",
        ge=2,
        le=100,
    )
    max_records_at_risk: float = _setting(
        0.05,
        "リスクありの記録の割合がこれを超えるスナップショットに印を付ける",
        "flag a snapshot whose share of records at risk exceeds this",
        ge=0,
        le=1,
    )
    max_average_risk: float = _setting(
        0.05,
        "平均の個別リスク（同値類の数 ÷ 記録数）がこれを超えるスナップショットに印を付ける",
        "flag a snapshot whose average individual risk (classes / records) exceeds this",
        ge=0,
        le=1,
    )
    max_combination_size: int = _setting(
        3,
        "準識別子の組合せを調べる最大の大きさ（全部の組は別に必ず調べる）",
        "largest quasi-identifier combination examined (the full set is always examined too)",
        ge=1,
        le=6,
    )
    population_dataset: str = _setting(
        "juki",
        "リンク率の基準にする住民基本台帳のデータセット",
        "the resident register dataset that link rates are measured against",
        pattern=r"^[a-z][a-z0-9_]{0,62}$",
    )


class OpenDataSettings(_Section):
    """Open-data publication (オープンデータ公開; renkei.hub.analysis.opendata, docs/opendata.md)."""

    differential_privacy: bool = _setting(
        True,
        "オープンデータの公開に差分プライバシーを求めるか（false なら秘匿処理済みの表をそのまま公開）",
        "whether open data must be published with differential privacy (false: the protected table as is)",
    )
    epsilon_per_year: float = _setting(
        1.0,
        "データセット・年度（4月〜3月）ごとのプライバシー予算 ε の総量",
        "the privacy budget: total epsilon per dataset and fiscal year (April to March)",
        gt=0,
        le=100,
    )
    confidence: float = _setting(
        0.95,
        "公開前に示す誤差の信頼度（0.95: 95% の確率で誤差はこの値未満）",
        "the confidence of the error shown before publishing (0.95: the error is below it with 95% probability)",
        gt=0.5,
        lt=1,
    )


class AuditSettings(_Section):
    max_unsigned_hours: float = _setting(
        24.0,
        "署名済みチェックポイントのない記録を許す時間（audit verify の既定。超えると終了コード 8）",
        "hours an entry may stay without a signed checkpoint (audit verify's default; older: exit 8)",
        gt=0,
    )
    checkpoint_every: int = _setting(
        1000, "この件数ごとにチェックポイントに署名する", "sign a checkpoint every this many appends", ge=1
    )
    working_hours_start: int = _setting(
        8,
        "点検で勤務時間とみなす開始時刻（市の時刻、時）",
        "inspection: the working day starts at this hour (city time)",
        ge=0,
        le=23,
    )
    working_hours_end: int = _setting(
        20,
        "点検で勤務時間とみなす終了時刻（市の時刻、時）",
        "inspection: the working day ends at this hour (city time)",
        ge=1,
        le=24,
    )
    repeated_denials: int = _setting(
        5,
        "点検で「拒否の繰り返し」とする 1 日あたりの件数",
        "inspection: denials of one user in one day flagged as repeated",
        ge=2,
    )

    @property
    def max_unsigned_age(self) -> dt.timedelta:
        return dt.timedelta(hours=self.max_unsigned_hours)


class WorkspaceSettings(_Section):
    """The sandbox of one analyst's workspace (renkei.hub.workspace.WorkspaceLimits is this model)."""

    memory_mib: int = _setting(
        2048, "利用者データベースのメモリ上限（MiB）", "DuckDB memory limit of the user database, MiB", ge=64
    )
    control_memory_mib: int = _setting(
        2048, "制御用データベースのメモリ上限（MiB）", "memory limit of the control database, MiB", ge=64
    )
    threads: int = _setting(2, "DuckDB のスレッド数", "DuckDB threads", ge=1, le=64)
    timeout: float = _setting(60.0, "1 クエリの制限時間（秒）", "wall-clock seconds per query", gt=0)
    grace: float = _setting(
        2.0, "中断から強制終了までの猶予（秒）", "seconds from the interrupt to the kill", gt=0
    )
    open_timeout: float = _setting(
        120.0, "作業環境を開く制限時間（秒）", "seconds allowed to open a workspace", gt=0
    )
    shared_idle_seconds: float = _setting(
        60.0,
        "復号したスナップショットを最後の作業環境が閉じた後も共有用に保持する秒数（0 で直ちに破棄）",
        "seconds a decrypted snapshot stays shared after the last workspace using it closed (0: closed at once)",
        ge=0,
        le=600,
    )
    max_running_queries: int = _setting(
        0,
        "この基盤プロセスで同時に実行するクエリの上限（0: CPU コア数）。超えた分は順番を待つ",
        "queries running at once in this process's workspaces (0: one per core); the others wait their turn",
        ge=0,
    )
    queue_seconds: float = _setting(
        120.0,
        "実行枠が空くのを待つ最長時間（秒）。超えると混雑として断る",
        "seconds a query waits for a running slot before it is refused as busy",
        gt=0,
    )
    reuse_mib: int = _setting(
        64,
        "同じスナップショットに対する同じ集計（制御クエリ）の結果を再利用のため保持する上限（MiB、0 で再利用しない）",
        "MiB of control results kept for reuse by the same query over the same snapshots (0: no reuse)",
        ge=0,
    )
    max_rows: int = _setting(100_000, "結果の行数の上限", "rows a result may hold", ge=1)
    max_result_bytes: int = _setting(
        256 << 20, "結果の大きさの上限（バイト）", "bytes a result may take", ge=1
    )
    max_processes: int = _setting(
        128,
        "作業プロセスの利用者 (nobody) 全体のスレッド数の上限 (RLIMIT_NPROC)",
        "tasks of the workers' user, all workers together (RLIMIT_NPROC)",
        ge=8,
    )
    allow_same_user: bool = _setting(
        False,
        "作業プロセスを基盤と同じ利用者で動かすことを許す（開発用。本番では不可）",
        "let workers run as the hub's own user (for developers; never in production)",
        env=SAME_USER_ENV,
    )

    @model_validator(mode="before")
    @classmethod
    def _same_user_from_env(cls, data: Any) -> Any:
        """Limits made in code (tests, benchmarks) follow the developer's variable as the loaded ones do."""
        if isinstance(data, dict) and "allow_same_user" not in data:
            return {**data, "allow_same_user": os.environ.get(SAME_USER_ENV, "").strip() or False}
        return data

    @property
    def address_space(self) -> int:
        """RLIMIT_AS: DuckDB and pyarrow map about 1.1 GiB idle; the buffer pools come on top."""
        return (3 << 30) + 2 * ((self.memory_mib + self.control_memory_mib) << 20)


class WebSection(_Section):
    trusted_proxies: tuple[str, ...] = _setting(
        (),
        "クライアント証明書ヘッダと X-Forwarded-For を信用するリバースプロキシのアドレス（またはネットワーク）",
        "addresses (or networks) of reverse proxies whose client-certificate and X-Forwarded-For headers are believed",
    )
    client_cert_header: str = _setting(
        "X-Renkei-Client-Cert",
        "信用するプロキシが端末のクライアント証明書（URL エンコードした PEM）を入れるヘッダ",
        "header in which a trusted proxy passes the terminal's client certificate (URL-encoded PEM)",
        pattern=HEADER_NAME.pattern,
    )
    max_body_bytes: int = _setting(
        256 * 1024,  # forms and JSON are small; a WebAuthn response is a few KiB
        "リクエスト本文の上限（バイト）。超えると 413",
        "largest request body accepted, in bytes; larger ones get 413",
        ge=4096,
    )
    hsts_max_age: int = _setting(
        2 * MIN_HSTS_SECONDS,
        "Strict-Transport-Security の max-age（秒、1 年以上）",
        "max-age of Strict-Transport-Security, in seconds (at least one year)",
        ge=MIN_HSTS_SECONDS,
    )
    max_workspaces: int = _setting(
        4,  # each is a DuckDB worker (up to workspace.memory_mib + control_memory_mib); plaintext is shared
        "同時に保持する作業環境（ログインセッションごとに 1 つ）の上限。すべて使用中なら 503",
        "workspaces kept at once (one per login session); when all are in use a new one gets 503",
        ge=1,
        le=256,
    )
    workspace_idle_seconds: int = _setting(
        900,
        "使われない作業環境を閉じるまでの秒数",
        "seconds after which a workspace nobody uses is closed",
        ge=1,
        le=24 * 3600,
    )
    step_up_minutes: int = _setting(
        5,
        "承認・出力の前の本人確認（職員証または確認コード）が有効な時間（分）。ログイン時の確認も含む",
        "minutes a step-up (the staff card or code proved again) lasts before an approval or an export; the login counts as one",
        ge=1,
        le=60,
    )

    @property
    def step_up_window(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.step_up_minutes)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, proxies: tuple[str, ...]) -> tuple[str, ...]:
        for proxy in proxies:
            proxy_network(proxy)
        return proxies


class WebAuthnSettings(_Section):
    rp_id: str = _setting(
        "localhost",
        "WebAuthn の RP ID: 利用者がブラウザで開くポータルのホスト名",
        "WebAuthn relying party id: the host name users browse to",
        pattern=_HOSTNAME,
    )
    origins: tuple[str, ...] = _setting(
        (),
        "ポータルのオリジン（カンマ区切り。空なら https:// と RP ID。https のみ、http://localhost を除く）",
        "the portal's origins, comma-separated; empty: https:// and the rp id (https only, but http://localhost)",
    )


# The default disclosure policy's fields are the policy model's own (renkei.hub.disclosure.policy); their help:
_DISCLOSURE_HELP = {
    "method": (
        "秘匿の方式: perturbation（撹乱）, suppression（秘匿）, both",
        "perturbation, suppression or both",
    ),
    "threshold": ("これ未満の度数は一次秘匿", "counts 0 < n < threshold are primary suppressed"),
    "dominance_n": ("(n, k) 支配性ルールの n", "n of the (n, k) dominance rule"),
    "dominance_k": ("(n, k) 支配性ルールの k（%）", "k (%) of the (n, k) dominance rule"),
    "p_percent": ("p% ルールの p", "p of the p% rule"),
    "zeros": (
        "秘匿時の空セル: show（0 を表示）か suppress",
        "empty cells when suppressing: show or suppress",
    ),
    "perturbation.max_noise": ("撹乱の最大幅 D", "D: noise is an integer in [-D, D]"),
    "perturbation.variance": ("撹乱の分散 V", "V: the noise variance of large counts"),
    "perturbation.small_cells": ("公表する正の度数の下限 js", "js: a published count is 0 or at least js"),
    "perturbation.magnitude_pct": (
        "合計の撹乱の上限（上位寄与の %）",
        "m: sums move by at most m% of their top contributions",
    ),
}


class HubSettings(_Section):
    """Every setting of the hub, by section (``[database]``, ``[sessions]`` … in hub.toml)."""

    database: DatabaseSettings = DatabaseSettings()
    keys: KeySettings = KeySettings()
    sessions: SessionSettings = SessionSettings()
    quotas: QuotaSettings = QuotaSettings()
    imports: ImportSettings = ImportSettings()
    risk: RiskSettings = RiskSettings()
    audit: AuditSettings = AuditSettings()
    workspace: WorkspaceSettings = WorkspaceSettings()
    web: WebSection = WebSection()
    webauthn: WebAuthnSettings = WebAuthnSettings()
    disclosure: DisclosurePolicy = DisclosurePolicy()
    opendata: OpenDataSettings = OpenDataSettings()


def proxy_network(text: str) -> IPNetwork:
    """A trusted proxy's address or network (strict: no host bits in a network)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError:
        raise ValueError(f"invalid trusted proxy address {text!r} (e.g. 127.0.0.1, 10.0.0.0/24)") from None


# --- the table ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of the table: ``name`` as in hub.toml (``section.key``), and the variable that overrides it."""

    name: str
    default: object
    help_ja: str
    help_en: str
    env: str


def _rows(model: type[BaseModel], prefix: str) -> Iterator[Setting]:
    for key, info in model.model_fields.items():
        name = f"{prefix}{key}"
        nested = info.annotation if isinstance(info.annotation, type) else None
        if nested is not None and issubclass(nested, BaseModel):
            yield from _rows(nested, f"{name}.")
            continue
        ja, en = _help(name, info)
        yield Setting(name, info.default, ja, en, _env_name(name, info))


def _help(name: str, info: FieldInfo) -> tuple[str, str]:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "ja" in extra:
        return str(extra["ja"]), info.description or ""
    return _DISCLOSURE_HELP.get(name.removeprefix("disclosure."), ("", ""))


def _env_name(name: str, info: FieldInfo) -> str:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return str(extra.get("env") or ENV_PREFIX + name.replace(".", "_").upper())


SETTINGS: tuple[Setting, ...] = tuple(_rows(HubSettings, ""))
DEFAULTS = HubSettings()


# --- loading ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Source:
    file: Path | None = None
    line: int | None = None
    env: str = ""


def load_settings(home: Path | None, environ: Mapping[str, str] | None = None) -> HubSettings:
    """``<home>/hub.toml`` (if any; none for ``home=None``), overridden by the environment, validated."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    sources: dict[str, _Source] = {}
    if home is not None:
        _read_file(home / SETTINGS_FILE, raw, sources)
    for setting in SETTINGS:
        value = environ.get(setting.env, "").strip()
        if value:
            _put(raw, setting.name, _from_env(setting, value))
            sources[setting.name] = _Source(env=setting.env)
    # Given ``environ`` is the whole environment here: the limits must not look at os.environ on their own.
    workspace = raw.get("workspace")
    raw["workspace"] = {"allow_same_user": False, **(workspace if isinstance(workspace, dict) else {})}
    try:
        return HubSettings.model_validate(raw)
    except ValidationError as exc:
        raise _invalid(exc, sources) from None


def _read_file(path: Path, raw: dict[str, Any], sources: dict[str, _Source]) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except UnicodeDecodeError:
        raise SettingsError(
            "基盤の設定ファイルは UTF-8 で保存してください", "hub.toml is not UTF-8", Location(path)
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise SettingsError(
            "基盤の設定ファイルの TOML 書式に誤りがあります",
            f"invalid TOML: {exc}",
            Location(path, line=int(line.group(1)) if line else None),
        ) from None
    lines = _key_lines(text)
    for name in _names(data):
        sources[name] = _Source(file=path, line=lines.get(name))
    raw.update(data)


def _names(data: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in data.items():
        yield f"{prefix}{key}"  # a table before its keys: a rule across a section points at its header
        if isinstance(value, dict):
            yield from _names(value, f"{prefix}{key}.")


_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\s\"-]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\"-]+?)\s*=")


def _key_lines(text: str) -> dict[str, int]:
    """The line of each key and table of a TOML file, by dotted name (tomllib does not keep positions)."""
    found: dict[str, int] = {}
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _TABLE.match(line):
            table = header.group(1).replace('"', "").replace(" ", "")
            found.setdefault(table, number)
        elif key := _KEY.match(line):
            name = key.group(1).replace('"', "")
            found.setdefault(f"{table}.{name}" if table else name, number)
    return found


def _put(raw: dict[str, Any], name: str, value: Any) -> None:
    *sections, key = name.split(".")
    for section in sections:
        inner = raw.get(section)
        raw[section] = inner = dict(inner) if isinstance(inner, dict) else {}
        raw = inner
    raw[key] = value


def _from_env(setting: Setting, value: str) -> Any:
    """A variable's text as the field takes it: lists are comma-separated, the rest pydantic converts."""
    if isinstance(setting.default, tuple):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _invalid(exc: ValidationError, sources: Mapping[str, _Source]) -> SettingsError:
    error = exc.errors()[0]
    name = ".".join(str(p) for p in error["loc"] if not isinstance(p, int))
    reason = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        ja, en = f"不明な設定 {name} です", f"unknown setting {name}"
    else:
        ja, en = f"設定 {name} の値が正しくありません", f"invalid value for the setting {name}: {reason}"
    given = _sources_of(name, sources)
    variables = ", ".join(s.env for s in given if s.env)
    if variables:
        return SettingsError(f"{ja}（環境変数 {variables}）", f"{en} (environment variable {variables})")
    lines = [s for s in given if s.file is not None]
    if lines:
        return SettingsError(ja, en, Location(lines[0].file, line=lines[0].line, key=name))
    return SettingsError(ja, en)


def _sources_of(name: str, sources: Mapping[str, _Source]) -> list[_Source]:
    """Where a refused value came from: the setting (or, for a rule across a section, the section and its
    keys), else the section it is in."""
    inner = [s for key, s in sources.items() if key == name or key.startswith(name + ".")]
    return inner or [s for key, s in sources.items() if name.startswith(key + ".")]
