"""Dependency floors admit no release with a published advisory (issue 11, point 16).

pip keeps an installed version that satisfies a range, so a floor below the first fixed release
lets an old, vulnerable install stand. The table is the first fixed release of each advisory;
pyproject.toml notes the same beside each floor. A new advisory: add it here, raise the floor there.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

FIRST_FIXED = {
    "h11": ("0.16.0", "GHSA-vqfr-h8mv-ghfj"),
    "starlette": ("1.3.0", "GHSA-7f5h-v6xp-fcq8, GHSA-86qp-5c8j-p5mr, GHSA-jp82-jpqv-5vv3"),
    "python-multipart": ("0.0.31", "GHSA-59g5-xgcq-4qw3 … GHSA-v9pg-7xvm-68hf"),
    "jinja2": ("3.1.6", "GHSA-q2x7-8rv6-6q7h, GHSA-gmj6-6f8f-6699, GHSA-cpwx-vrp4-4pq7"),
    "httpx": ("0.23.0", "GHSA-h8pj-cxx2-jfg2"),
    "pydantic": ("2.4.0", "GHSA-mr82-8j83-vxmv"),
    "uvicorn": ("0.11.7", "GHSA-33c7-2mpw-hg34, GHSA-f97h-2pfx-f59f"),
    "pytest": ("9.0.3", "GHSA-6w46-j5rx-g56g"),
    "aiosmtpd": ("1.4.6", "CVE-2024-27305, CVE-2024-34083"),
}


def declared_requirements() -> dict[str, list[Requirement]]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    found: dict[str, list[Requirement]] = {}
    for line in lines:
        requirement = Requirement(line)
        found.setdefault(canonicalize_name(requirement.name), []).append(requirement)
    return found


def test_every_floor_is_at_or_above_the_first_fixed_release():
    declared = declared_requirements()
    for name, (fixed, advisories) in FIRST_FIXED.items():
        assert name in declared, f"{name} is no longer declared: update the advisory table"
        for requirement in declared[name]:
            floors = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
            assert floors, f"{requirement} has no floor"
            lowest = max(floors)
            assert lowest >= Version(fixed), f"{requirement} admits releases before {fixed}: {advisories}"
