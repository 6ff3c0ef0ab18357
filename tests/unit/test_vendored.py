"""Vendored browser files: each pinned in web/vendor/package.json, listed with its version and licence, unchanged.

And the pages load nothing from elsewhere: no template or hand-written static file names an external URL
(the browser tests also check every request the browser makes, see tests/browser/conftest.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "web" / "vendor"
WEB = ROOT / "src" / "renkei" / "web"
MANIFEST = WEB / "static" / "vendor" / "VENDORED.json"
VENDORED_DIRS = (WEB / "static" / "vendor", ROOT / "tests" / "browser" / "vendor")
EXTERNAL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}|url\(\s*['"]?(?:https?:)?//""")


def manifest() -> dict[str, dict[str, str]]:
    entries = json.loads(MANIFEST.read_text(encoding="utf-8"))["files"]
    return {entry["file"]: entry for entry in entries}


def pins() -> dict[str, str]:
    package = json.loads((VENDOR / "package.json").read_text(encoding="utf-8"))
    return {**package["dependencies"], **package["devDependencies"]}


def test_every_vendored_file_is_listed_with_its_version_licence_and_hash() -> None:
    listed = manifest()
    on_disk = {
        str(path.relative_to(ROOT))
        for directory in VENDORED_DIRS
        for path in directory.rglob("*")
        if path.is_file() and path != MANIFEST
    }
    assert on_disk == set(listed), "run `make vendor`: the vendored files and VENDORED.json disagree"
    for name, entry in listed.items():
        assert entry["version"] and entry["license"], name
        assert hashlib.sha256((ROOT / name).read_bytes()).hexdigest() == entry["sha256"], f"{name} was edited"


def test_each_vendored_package_is_the_pinned_version_and_ships_its_licence() -> None:
    pinned = pins()
    locked = json.loads((VENDOR / "package-lock.json").read_text(encoding="utf-8"))["packages"]
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", version) for version in pinned.values()), "pin exact versions"
    listed = manifest().values()
    for entry in listed:
        assert (
            entry["version"]
            == pinned[entry["package"]]
            == locked[f"node_modules/{entry['package']}"]["version"]
        )
    licensed = {Path(e["file"]).parent for e in listed if Path(e["file"]).name.startswith("LICENSE")}
    assert licensed == {Path(e["file"]).parent for e in listed}, "a vendored directory without its LICENSE"


def test_pages_and_our_own_static_files_reference_no_external_url() -> None:
    ours = [
        *(WEB / "templates").glob("*.html"),
        *(WEB / "static").glob("*.css"),
        *(WEB / "static").glob("*.js"),
    ]
    assert ours
    found = {
        str(path.relative_to(ROOT)): EXTERNAL.findall(path.read_text(encoding="utf-8"))
        for path in ours
        if path != MANIFEST
    }
    assert {name: urls for name, urls in found.items() if urls} == {}


def test_the_external_url_pattern_finds_what_a_page_could_load() -> None:
    for text in ('<script src="https://cdn.example.com/x.js">', "url(//fonts.example.org/a.woff)"):
        assert EXTERNAL.search(text), text
    for text in ('<a href="/applications">', '<link href="/static/renkei.css">', "a // comment"):
        assert not EXTERNAL.search(text), text
