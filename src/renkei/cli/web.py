"""``renkei serve``: the web portal (API and pages) for designated users at registered terminals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from renkei.cli.common import HomeOption, err, handle_errors, hub_home
from renkei.errors import Location, RenkeiError
from renkei.hub.access.terminals import CA_CERT_FILE
from renkei.hub.settings import load_settings
from renkei.web.settings import WebSettings

DEFAULT_TLS_PORT = 8443
DEFAULT_PLAIN_PORT = 8000


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


@handle_errors
def serve(
    home: HomeOption = None,
    host: Annotated[
        str, typer.Option(help="待ち受けるアドレス (address to listen on; loopback unless told otherwise)")
    ] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(
            help=f"ポート (port; default {DEFAULT_TLS_PORT} with TLS, {DEFAULT_PLAIN_PORT} without)"
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            help="サーバ証明書 PEM: TLS で待ち受け、端末のクライアント証明書を求める (server certificate)"
        ),
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="サーバ証明書の秘密鍵 PEM (its private key)")] = None,
    uds: Annotated[
        Path | None,
        typer.Option(
            help="リバースプロキシの背後で Unix ソケット（0660）で待ち受ける（推奨） (behind a reverse proxy,"
            " listen on this Unix socket, mode 0660; preferred)"
        ),
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            help="TCP で待ち受けるとき、証明書ヘッダと X-Forwarded-For を信用するリバースプロキシのアドレス"
            "（複数可、--proxy-secret-file が必要）。既定は設定 web.trusted_proxies (trusted reverse proxy address"
            " or network; repeatable; needs --proxy-secret-file; default: that setting)"
        ),
    ] = None,
    proxy_secret_file: Annotated[
        Path | None,
        typer.Option(
            help="プロキシが X-Renkei-Proxy-Secret ヘッダで送る合言葉のファイル（他者が読めないこと）"
            " (file holding the secret the proxy sends in X-Renkei-Proxy-Secret; not readable by others)"
        ),
    ] = None,
    client_cert_header: Annotated[
        str | None,
        typer.Option(
            help="プロキシが端末の証明書を渡すヘッダ。既定は設定 web.client_cert_header"
            " (header carrying the terminal certificate; default: that setting, X-Renkei-Client-Cert)"
        ),
    ] = None,
) -> None:
    """ポータル（API と画面）を起動する (serve the web portal)."""
    # The web stack is imported here, not at the top: every other command would pay for it at start-up.
    import uvicorn  # noqa: PLC0415

    from renkei.web.app import create_app  # noqa: PLC0415
    from renkei.web.server import (  # noqa: PLC0415
        TLSFiles,
        access_log_off_the_loop,
        run_on_unix_socket,
        server_config,
    )

    web = load_settings(hub_home(home)).web  # hub.toml and RENKEI_WEB_*, under the options given here
    # web.trusted_proxies is for set-up B over TCP; on a Unix socket the socket itself is the proof.
    proxies = tuple(trusted_proxy or ()) or (web.trusted_proxies if uds is None else ())
    files = _tls_files(hub_home(home), tls_cert, tls_key)
    tls = TLSFiles(*files) if files is not None else None
    _check_listening(tls is not None, uds, proxies, port)
    settings = WebSettings.from_section(
        web,
        trusted_proxies=proxies,
        client_cert_header=client_cert_header or "",
        proxy_secret=_proxy_secret(proxy_secret_file, proxies),
        proxy_socket=uds is not None,
    )
    app = create_app(hub_home(home), settings)
    chosen_port = port if port is not None else (DEFAULT_TLS_PORT if tls else DEFAULT_PLAIN_PORT)
    config = server_config(app, host=host, port=chosen_port, tls=tls)
    # The audit log's full verification in a thread of its own, so that no page view (/admin,
    # /audit/inspection) waits for it; the access log's writes in another, not on the event loop.
    with app.state.portal.hub.audit.keep_verified():
        if uds is not None:
            err.print(f"renkei: unix:{uds} で待ち受けます (listening)", highlight=False)
            run_on_unix_socket(config, uds)
            return
        scheme = "https" if tls else "http"
        err.print(f"renkei: {scheme}://{host}:{chosen_port}/ で待ち受けます (listening)", highlight=False)
        with access_log_off_the_loop():
            uvicorn.Server(config).run()


def _check_listening(has_tls: bool, uds: Path | None, proxies: tuple[str, ...], port: int | None) -> None:
    """Exactly one way to see terminals: renkei's own TLS, a Unix socket, or a TCP proxy (and its secret)."""
    if not has_tls and uds is None and not proxies:
        raise RenkeiError(
            "--tls-cert/--tls-key（自前の TLS）か、リバースプロキシの背後なら --uds（推奨）または --trusted-proxy と"
            " --proxy-secret-file を指定してください。どれもないと端末を確認できず、誰もログインできません",
            "give --tls-cert/--tls-key (own TLS), or behind a proxy --uds (preferred) or --trusted-proxy with"
            " --proxy-secret-file: without one of them no terminal can be identified and nobody can log in",
        )
    if uds is not None and (has_tls or proxies or port is not None):
        raise RenkeiError(
            "--uds は --tls-cert、--trusted-proxy、--port と一緒には使えません",
            "--uds goes with none of --tls-cert, --trusted-proxy or --port",
        )


def _proxy_secret(path: Path | None, proxies: tuple[str, ...]) -> str:
    """The proxy's secret from its file, which nobody but the service (and its group) may read."""
    if path is None:
        return ""
    if not proxies:
        raise RenkeiError(
            "--proxy-secret-file は --trusted-proxy と一緒に使います",
            "--proxy-secret-file goes with --trusted-proxy",
        )
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise RenkeiError(
            "合言葉のファイルを読めません", f"cannot read the secret file: {exc}", Location(path)
        ) from None
    if mode & 0o007:
        raise RenkeiError(
            "合言葉のファイルを他の利用者が読めます。chmod 600（または 640）にしてください",
            "the secret file is readable by others; chmod 600 (or 640) it",
            Location(path),
        )
    return text.strip()


def _tls_files(home: Path, certificate: Path | None, key: Path | None) -> tuple[Path, Path, Path] | None:
    """The server's certificate and key, and the terminal CA that client certificates must come from."""
    if certificate is None and key is None:
        return None
    if certificate is None or key is None:
        raise RenkeiError(
            "--tls-cert と --tls-key は両方指定してください", "--tls-cert and --tls-key go together"
        )
    for path in (certificate, key):
        if not path.is_file():
            raise RenkeiError(f"ファイルがありません: {path}", f"no such file: {path}")
    client_ca = home / CA_CERT_FILE
    if not client_ca.is_file():
        raise RenkeiError(
            "端末認証局の証明書がありません。先に `renkei terminal enroll` で端末を登録してください",
            f"{client_ca} not found; enroll a terminal first (`renkei terminal enroll`)",
        )
    return certificate, key, client_ca
