"""``renkei serve``: the web portal (API and pages) for designated users at registered terminals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from renkei.cli.common import HomeOption, err, handle_errors, hub_home
from renkei.errors import RenkeiError
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
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            help="証明書ヘッダと X-Forwarded-For を信用するリバースプロキシのアドレス（複数可）。既定は設定"
            " web.trusted_proxies (trusted reverse proxy address or network; repeatable; default: that setting)"
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
    from renkei.web.server import TLSFiles, server_config  # noqa: PLC0415

    settings = WebSettings.from_section(
        load_settings(hub_home(home)).web,  # hub.toml and RENKEI_WEB_*, under the options given here
        trusted_proxies=tuple(trusted_proxy or ()),
        client_cert_header=client_cert_header or "",
    )
    files = _tls_files(hub_home(home), tls_cert, tls_key)
    tls = TLSFiles(*files) if files is not None else None
    if tls is None and not settings.trusted_proxies:
        raise RenkeiError(
            "--tls-cert/--tls-key（自前の TLS）か --trusted-proxy（リバースプロキシ）のどちらかを指定してください。"
            "どちらもないと端末を確認できず、誰もログインできません",
            "give --tls-cert/--tls-key (own TLS) or --trusted-proxy (behind a proxy): without either no terminal"
            " can be identified and nobody can log in",
        )
    app = create_app(hub_home(home), settings)
    chosen_port = port if port is not None else (DEFAULT_TLS_PORT if tls else DEFAULT_PLAIN_PORT)
    scheme = "https" if tls else "http"
    err.print(f"renkei: {scheme}://{host}:{chosen_port}/ で待ち受けます (listening)", highlight=False)
    uvicorn.Server(server_config(app, host=host, port=chosen_port, tls=tls)).run()


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
