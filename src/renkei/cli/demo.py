"""``renkei demo``: the whole flow on a synthetic city, from core-system CSVs to an encrypted, audited vault."""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import shutil
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from renkei.cli.common import handle_errors, out
from renkei.cli.demo_analysis import run_demo_analysis
from renkei.cli.listing import listing
from renkei.cli.web import serve
from renkei.clock import SYSTEM_CLOCK, city_today
from renkei.errors import EXIT_INTEGRITY, Location, RenkeiError
from renkei.files import write_private
from renkei.hub.access.designation import designate_user
from renkei.hub.access.people import ROLE_LABELS_JA, Role
from renkei.hub.access.terminals import EnrolledTerminal, TerminalCA, enroll_terminal
from renkei.hub.access.totp import current_code, enroll_totp
from renkei.hub.audit_actions import AuditAction
from renkei.hub.catalog import Sender, get_or_create_department
from renkei.hub.home import Hub, init_hub
from renkei.sending.extract import extract
from renkei.sending.pseudonym import create_key
from renkei.sending.seal import create_sender, trust_hub
from renkei.sending.synth import SnapshotFiles, generate_city
from renkei.spec import bundled_specs, load_spec

MARKER = ".renkei-demo"
DEMO_HOST = "127.0.0.1"  # the demo portal answers this machine only
DEMO_PORT = 8443
SENDER_NAME = "kyotsu-kiban"


def _fresh_dir(path: Path) -> None:
    """Reuse a directory only if an earlier demo made it; never wipe anything else."""
    if path.exists() and any(path.iterdir()):
        if not (path / MARKER).exists():
            raise RenkeiError(
                "デモ用ディレクトリが空ではありません（デモが作ったものではないため消しません）",
                "demo directory is not empty and was not made by the demo; not deleting it",
                Location(path),
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("made by `renkei demo`; safe to delete\n", encoding="utf-8")


@handle_errors
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="デモの作業ディレクトリ (work directory)")] = Path(
        "demo"
    ),
    residents: Annotated[int, typer.Option("--residents", min=100, help="住民数 (residents)")] = 20_000,
    years: Annotated[int, typer.Option("--years", min=1, help="年次スナップショット数 (annual periods)")] = 3,
    as_of: Annotated[str, typer.Option("--as-of", help="最新の基準日 (latest as-of date)")] = "2025-01-01",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    serve_portal: Annotated[
        bool,
        typer.Option("--serve", help="最後にポータルを起動する (end by serving the portal; Ctrl+C stops it)"),
    ] = False,
    port: Annotated[int, typer.Option("--port", help="ポータルのポート (portal port)")] = DEMO_PORT,
    code: Annotated[
        str | None,
        typer.Option(
            "--code",
            help="デモ利用者の現在の TOTP コードを表示して終了 (print a demo user's current TOTP code)",
        ),
    ] = None,
) -> None:
    """架空都市で一連の流れを実演する: 生成 → 仮名加工・封緘 → 受入 → 検証 → 分析 → ポータル (run the whole flow)."""
    if code is not None:
        out.print(_current_code(directory, code), highlight=False)
        return
    _fresh_dir(directory)
    sender_home, hub_home = directory / "sender", directory / "hub"
    out.rule("1. 準備 (set-up): 送信側と基盤の鍵 (keys on both sides)")
    hub = init_hub(hub_home)
    create_key(sender_home)
    sender = create_sender(sender_home, SENDER_NAME)
    trust_hub(sender_home, hub.package_recipient())
    with hub.session() as session:
        session.add(Sender(name=SENDER_NAME, public_key=sender.public_key_b64))
        hub.audit.append_in(
            session, actor="demo", action=AuditAction.ADMIN_SENDER_ADD, resource=f"sender/{SENDER_NAME}"
        )
        session.commit()
    out.print("送信側 (sending side), 基盤 (hub):")
    out.print(f"  {sender_home}", soft_wrap=True)
    out.print(f"  {hub_home}", soft_wrap=True)

    out.rule(f"2. 架空都市の生成 (synthetic city): {residents:,} 人 × {years} 年")
    snapshots = generate_city(
        residents, dt.date.fromisoformat(as_of), directory / "raw", seed=seed, years=years
    )

    _seal_and_hand_off(snapshots, directory, sender_home, hub)
    _import_and_verify(hub)

    out.rule("6. 利用者と専用端末 (designated staff and a terminal)")
    terminal = _designate_demo_people(hub, directory / "terminal")

    out.rule("7. 分析: 申請・承認・連携した集計表 (apply, approve, a linked table)")
    run_demo_analysis(hub, city_today(SYSTEM_CLOCK), max(s.as_of for s in snapshots))
    renkei = Path(sys.executable).parent / "renkei"
    out.print()
    out.print("次に試すこと (try next):")
    for command in ("catalog list", "catalog show juki", "audit tail", "user list"):
        out.print(f"  {renkei} {command} --home {hub_home}", soft_wrap=True)

    out.rule("8. ポータル (the portal)")
    cert, key = _demo_server_certificate(directory / "tls")
    _print_portal_login(directory, terminal, port)
    if not serve_portal:
        out.print("ポータルの起動 (start it):")
        out.print(f"  {renkei} serve --home {hub_home} --tls-cert {cert} --tls-key {key} --port {port}",
                  soft_wrap=True, highlight=False)  # fmt: skip
        return
    serve(home=hub_home, host=DEMO_HOST, port=port, tls_cert=cert, tls_key=key)


def _seal_and_hand_off(snapshots: list[SnapshotFiles], directory: Path, sender_home: Path, hub: Hub) -> None:
    """The sending side pseudonymizes and seals each file; the package moves one way into the hub's inbox."""
    out.rule("3. 共通基盤: 仮名加工と封緘 (pseudonymize and seal)")
    specs = {name: load_spec(path) for name, path in bundled_specs().items()}
    summary = listing(
        "基準日 (as-of)",
        "データセット (dataset)",
        "行数 (rows)",
        "住所 番地/町字 (block/town)",
        "生年月日無効 (bad birth date)",
        right={2, 3, 4},
    )
    for snap in snapshots:
        for name, source in snap.paths.items():
            result = extract(specs[name], source, snap.as_of, directory / "extracts", sender_home)
            assert result.package is not None
            result.package.rename(hub.inbox / result.package.name)  # the one-way hand-off
            counts = result.manifest.counts
            addr = counts.get("住所", {})
            births = next((c for col, c in counts.items() if "生年月日" in col), {})
            summary.add_row(
                str(snap.as_of),
                name,
                f"{result.manifest.rows_out:,}",
                f"{addr.get('block_kept', 0):,} / {addr.get('block_deleted', 0) + addr.get('town_fallback', 0):,}",
                f"{births.get('invalid', 0):,}",
            )
    out.print(summary)
    out.print("封緘したパッケージ (sealed packages):")
    out.print(f"  {hub.inbox}", soft_wrap=True)


def _import_and_verify(hub: Hub) -> None:
    out.rule("4. 基盤: 受入 (import from the inbox)")
    with hub.session() as session:
        importer = hub.importer(session)
        for package in sorted(hub.inbox.iterdir()):
            outcome = importer.import_package(package)
            out.print(f"受入 (imported): {outcome.resource} — {outcome.rows:,} 行")

    out.rule("5. 検証 (verify)")
    problems = hub.vault.verify()
    report = hub.audit.verify()
    out.print(
        f"保管庫 (vault): {len(hub.vault.snapshots())} スナップショット, 問題 (problems) {len(problems)} 件"
    )
    out.print(
        f"監査ログ (audit log): {report.size} 件, {'正常 (verifies)' if report.ok else report.message_ja}"
    )
    if problems or not report.ok:
        raise typer.Exit(EXIT_INTEGRITY)


DEMO_PEOPLE = (
    ("seisaku-admin", "政策 太郎", Role.ADMIN, "政策調査課"),
    ("shimin-steward", "市民 花子", Role.STEWARD, "市民課"),
    ("kaigo-steward", "介護 次郎", Role.STEWARD, "介護保険課"),
    ("bunseki-analyst", "分析 三郎", Role.ANALYST, "政策調査課"),
    ("kansa-auditor", "監査 四郎", Role.AUDITOR, "監査課"),
)


def _designate_demo_people(hub: Hub, terminal_dir: Path) -> EnrolledTerminal:
    """Demo staff with one-time passwords and TOTP (no card reader in a demo), and one registered terminal."""
    lines: list[str] = []  # people.txt keeps each otpauth:// URI (for an authenticator app's QR import)
    shown: list[str] = []  # the screen shows the secret alone, within 80 columns
    with hub.session() as session:
        for dept in {d for *_, d in DEMO_PEOPLE}:
            get_or_create_department(session, dept)
        for login_id, name, role, dept in DEMO_PEOPLE:
            password = "-".join(secrets.token_hex(3) for _ in range(4))
            user = designate_user(
                session,
                hub.audit,
                login_id=login_id,
                display_name=name,
                role=role,
                department=dept,
                password=password,
                actor="demo",
            )
            uri = enroll_totp(session, user, kek=hub.kek, enrolled_by="demo")
            lines += [
                f"{login_id}  {name}  {ROLE_LABELS_JA[role]}  {dept}",
                f"    初期パスワード (one-time password, must change): {password}",
                f"    TOTP: {uri}",
            ]
            shown += [lines[-3], lines[-2], f"    TOTP 秘密鍵 (secret): {_secret_of(uri)}"]
        enrolled = enroll_terminal(
            session, TerminalCA.load_or_create(hub.home), "demo-terminal", terminal_dir, enrolled_by="demo"
        )
        hub.audit.append_in(
            session, actor="demo", action=AuditAction.ADMIN_TERMINAL_ENROLL, resource="terminal/demo-terminal"
        )
        session.commit()
    people = terminal_dir.parent / "people.txt"
    write_private(people, ("\n".join(lines) + "\n").encode())
    for line in shown:
        out.print(line, highlight=False)
    out.print("（URI も含めて次のファイルに保存しました, mode 0600 / saved with the URIs to）")
    out.print(f"  {people}", soft_wrap=True)
    return enrolled


def _print_portal_login(directory: Path, terminal: EnrolledTerminal, port: int) -> None:
    """How a newcomer logs in from the demo terminal, step by step, within 80 columns."""
    url = f"https://localhost:{port}/"
    steps = (
        f"1. 専用端末の証明書（下の PKCS#12、パスワード {terminal.bundle_password}）をブラウザに取り込む。Chromium: 設定 → プライバシーとセキュリティ → セキュリティ"
        " → 証明書の管理 → 個人 → 読み込む (import the terminal's PKCS#12 into the browser)",
        f"2. {url} を開く。サーバ証明書はデモ用の自己署名なので、警告を確認して進む"
        " (open it; the server certificate is a self-signed demo certificate)",
        "3. 利用者ID（例 bunseki-analyst）と上の初期パスワード → 新しいパスワードを設定"
        " (log in with the ID and one-time password, then choose a new password)",
        "4. TOTP コード: 認証アプリに上の秘密鍵を登録するか、次のコマンドで表示"
        " (TOTP code: add the secret to an authenticator app, or print it with):",
    )
    out.print(f"ポータル (portal): {url}   端末 (terminal): demo-terminal", highlight=False)
    out.print(f"  {terminal.bundle_file}", soft_wrap=True, highlight=False)
    for step in steps:
        out.print(step, highlight=False)
    renkei = Path(sys.executable).parent / "renkei"
    out.print(f"  {renkei} demo --dir {directory} --code bunseki-analyst", soft_wrap=True, highlight=False)
    out.print(
        "5. ワークスペースで集計表を作り、グラフを見る (build a table in the workspace and see its chart)"
    )


def _secret_of(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["secret"][0]


def _current_code(directory: Path, login_id: str) -> str:
    """The current TOTP code of a demo person, from the people.txt an earlier demo wrote (demo only)."""
    people = directory / "people.txt"
    if not (directory / MARKER).exists() or not people.exists():
        raise RenkeiError(
            "デモのディレクトリではありません（先に renkei demo を実行してください）",
            "not a demo directory (run renkei demo first)",
            Location(directory),
        )
    for line in people.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("TOTP:") and f":{login_id}?" in line:
            return current_code(_secret_of(line.split("TOTP:", 1)[1].strip()), dt.datetime.now(dt.UTC))
    raise RenkeiError(f"デモの利用者 {login_id} はいません", f"no demo user {login_id!r}", Location(people))


def _demo_server_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost, for the demo only (production uses the city's own CA)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_path = write_private(directory / "server.key", key_pem)
    cert_path = directory / "server.crt"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
