"""report.keep: old runs' reports are deleted after each run; nothing else in the directory is touched."""

from __future__ import annotations

from pathlib import Path

from catalog_sync.report import prune_reports

OTHERS = [
    "latest.json",
    "latest.md",
    "latest.html",
    "notes.txt",
    "catalog-sync-notes.md",
    "catalog-sync-x.json",
]


def fill(directory: Path, runs: list[str], exts: tuple[str, ...] = ("json", "md", "html")) -> None:
    directory.mkdir(exist_ok=True)
    for run in runs:
        for ext in exts:
            (directory / f"catalog-sync-{run}.{ext}").write_text(run)
    for name in OTHERS:
        (directory / name).write_text("keep me")


def left(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def run_files(*runs: str) -> set[str]:
    return {f"catalog-sync-{r}.{ext}" for r in runs for ext in ("json", "md", "html")}


RUNS = [f"2026112{d}T000000Z-abc{d}00" for d in range(6)]  # oldest first


def test_only_the_newest_runs_are_kept_by_run_id_and_other_files_never_touched(tmp_path: Path) -> None:
    fill(tmp_path, RUNS[::-1])  # creation order does not matter: run ids are time order
    deleted = prune_reports(tmp_path, 2, current_run=RUNS[-1])
    assert len(deleted) == 12
    assert left(tmp_path) == run_files(*RUNS[-2:]) | set(OTHERS)


def test_the_current_run_is_kept_even_if_its_id_sorts_first(tmp_path: Path) -> None:
    fill(tmp_path, RUNS)
    prune_reports(tmp_path, 2, current_run=RUNS[0])
    assert left(tmp_path) == run_files(RUNS[0], RUNS[-1]) | set(OTHERS)


def test_keep_one_and_runs_that_wrote_only_some_formats(tmp_path: Path) -> None:
    fill(tmp_path, RUNS[:3], exts=("json",))
    fill(tmp_path, RUNS[3:])
    prune_reports(tmp_path, 1, current_run=RUNS[-1])
    assert left(tmp_path) == run_files(RUNS[-1]) | set(OTHERS)


def test_fewer_runs_than_keep_deletes_nothing(tmp_path: Path) -> None:
    fill(tmp_path, RUNS)
    assert prune_reports(tmp_path, 100, current_run=RUNS[-1]) == []
    assert left(tmp_path) == run_files(*RUNS) | set(OTHERS)
