"""The documentation tells the truth about what the code does: vendor endpoints, installed docs."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
HTTP_SOURCES = ("brreg", "companies_house", "fr_recherche", "qichacha", "tianyancha")
# Modules that ask a source's hosts besides ``sources/<type>.py``: its change feeds, its other registers.
HELPER_MODULES = {"brreg": ("brreg_updates",), "fr_recherche": ("fr_bodacc",)}
UNIT = ROOT / "deploy" / "borrower-watcher.service"
VENV = "/opt/borrower-watcher/venv/"


def _path_literals(module: Path) -> set[str]:
    """Every string (or f-string, placeholders as ``{name}``) in a source module that is a URL path."""
    found: set[str] = set()
    tree = ast.parse(module.read_text(encoding="utf-8"))
    f_string_parts = {
        id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values
    }
    for node in ast.walk(tree):
        if id(node) in f_string_parts:
            continue
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                part.value if isinstance(part, ast.Constant) else "{" + ast.unparse(part.value) + "}"
                for part in node.values
                if isinstance(part, ast.Constant | ast.FormattedValue)
            )
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        if re.fullmatch(r"/[A-Za-z][\w/{}.\-]*", text):
            found.add(text)
    return found


def _default_base_url(module: Path) -> str:
    match = re.search(r'base_url: str = "([^"]+)"', module.read_text(encoding="utf-8"))
    assert match, f"{module.name} declares no default base_url"
    return match.group(1)


@pytest.mark.parametrize("source", HTTP_SOURCES)
def test_readme_names_each_vendor_default_base_url_and_every_path(source: str) -> None:
    module = ROOT / "sources" / f"{source}.py"
    row = next((line for line in README.splitlines() if line.startswith(f"| `{source}` | `http")), None)
    assert row is not None, f"README's endpoint table has no row for {source}"
    assert f"`{_default_base_url(module)}`" in row
    paths = _path_literals(module)
    assert paths, f"found no paths in {module.name}"
    for helper in HELPER_MODULES.get(source, ()):
        helper_paths = _path_literals(ROOT / "sources" / f"{helper}.py")
        assert helper_paths, f"found no paths in {helper}.py"
        paths |= helper_paths
    missing = sorted(path for path in paths if path not in row)
    assert not missing, f"README's {source} row lacks {missing}"


def test_path_literal_scan_sees_f_strings_and_constants(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text('A = "/plain/path"\nB = f"/enheter/{registry_id}/roller"\nC = "not a path"\n')
    assert _path_literals(module) == {"/plain/path", "/enheter/{registry_id}/roller"}


def _installed_docs() -> dict[str, Path]:
    """Where pip puts each data file, relative to the venv, mapped to the file in the repository."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    installed: dict[str, Path] = {}
    for target, patterns in config["tool"]["setuptools"]["data-files"].items():
        for pattern in patterns:
            matches = sorted(ROOT.glob(pattern))
            assert matches, f"pyproject data-files: {pattern} matches no file"
            for match in matches:
                installed[f"{target}/{match.name}"] = match
    return installed


def test_unit_documentation_points_at_files_pip_installs() -> None:
    uris = [
        line.partition("=")[2] for line in UNIT.read_text().splitlines() if line.startswith("Documentation=")
    ]
    assert uris, "the unit has no Documentation="
    installed = _installed_docs()
    for uri in uris:
        assert uri.startswith(f"file://{VENV}"), f"{uri} is not under the venv the unit runs from"
        relative = uri.removeprefix(f"file://{VENV}")
        assert relative in installed, f"{uri}: pip does not install {relative}"
    assert installed["share/doc/borrower-watcher/README.md"] == ROOT / "README.md"


def test_readme_links_resolve_in_the_installed_layout() -> None:
    """README's relative links (docs/…) still work from share/doc/borrower-watcher/."""
    installed = _installed_docs()
    links = set(re.findall(r"\]\(((?:docs/)[^)#]+)\)", README))
    assert links, "README links to nothing under docs/"
    for link in links:
        assert f"share/doc/borrower-watcher/{link}" in installed, (
            f"README links {link}, which is not installed"
        )


@pytest.mark.parametrize("source", HTTP_SOURCES)
def test_every_vendor_default_base_url_is_https(source: str) -> None:
    """Keys and tokens travel with every request: no default sends them in clear text."""
    assert _default_base_url(ROOT / "sources" / f"{source}.py").startswith("https://")
