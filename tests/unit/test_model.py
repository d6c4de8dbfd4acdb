"""The per-person records are plain slots at run time; the type checker is what keeps them read-only."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

SNIPPET = """
from catalog_sync.model import CatalogUser, LiteLLMUser
from catalog_sync.report import Budget
from catalog_sync.roles import DesiredUser

def touch(u: CatalogUser, r: LiteLLMUser, d: DesiredUser, b: Budget) -> None:
    u.email = "x@example.com"
    r.max_budget = 1.0
    d.teams = frozenset()
    b.spend = 0.0
"""


def test_the_type_checker_refuses_assignment_to_a_per_person_record(tmp_path: Path) -> None:
    target = tmp_path / "mutate.py"
    target.write_text(textwrap.dedent(SNIPPET))
    out, _err, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(target)]
    )
    assert status == 1, out
    refused = [line for line in out.splitlines() if "is read-only" in line]
    assert [line.split(":")[1] for line in refused] == ["7", "8", "9", "10"], out
