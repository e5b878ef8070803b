"""``bench/envelope.py --quick`` still runs, measures every operation, and writes its files.

A smoke test, not a benchmark: the budget is a few milliseconds per window,
so the numbers mean nothing; what is checked is that every operation is
packed, unpacked and timed on all three sides (ours, the bare primitives and,
when the interop venv exists, the ``didcomm`` package), and that the Markdown
section replaces itself without touching the rest of the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench" / "envelope.py"
#: Seconds per timing window: enough for one call of the slowest operation.
SMOKE_BUDGET_S = 0.003
#: The whole smoke run, interpreter start-ups included, must finish within this.
SMOKE_TIMEOUT_S = 120


def interop_python() -> Path:
    return Path(
        os.environ.get("DIDCOMMD_INTEROP_PYTHON", REPO / ".venv-interop" / "bin" / "python")
    )


def test_quick_run_measures_every_operation(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    markdown = tmp_path / "RESULTS.md"
    markdown.write_text("# Benchmark results\n\n## Another bench\n\nkept as is\n")
    cmd = [
        sys.executable,
        str(BENCH),
        "--quick",
        "--budget",
        str(SMOKE_BUDGET_S),
        "--json",
        str(results),
        "--markdown",
        str(markdown),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]

    # Appended, not prepended: bench/ holds scripts named like our packages
    # (bench/protocols.py) that must not shadow them.
    sys.path.append(str(REPO / "bench"))
    from _envelope_fixtures import make_ops
    from envelope import MARKDOWN_BEGIN, MARKDOWN_END, write_markdown

    report = json.loads(results.read_text())
    rows = {row["op"]: row for row in report["results"]}
    assert set(rows) == {op["name"] for op in make_ops()}
    for row in rows.values():
        assert row["ours"] > 0 and row["bare"] > 0
        assert row["vs_bare"] > 0
    if interop_python().exists():
        targeted = [row for row in rows.values() if row["targeted"]]
        assert all(row["didcomm"] for row in targeted), [r["didcomm_error"] for r in targeted]
        assert all(row["pass_didcomm"] is not None for row in targeted)

    text = markdown.read_text()
    section = text[text.index(MARKDOWN_BEGIN) : text.index(MARKDOWN_END) + len(MARKDOWN_END)]
    write_markdown(markdown, section + "\n")  # a second run replaces, not appends
    assert markdown.read_text() == text
    assert "## Another bench\n\nkept as is\n" in text
    assert text.count("## Envelope (`bench/envelope.py`)") == 1
    assert "| sign EdDSA pack |" in text


def test_the_sealing_bench_counts_the_seals_of_a_message() -> None:
    cmd = [sys.executable, str(REPO / "bench" / "sealing.py"), "--messages", "3", "--sizes", "200"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    row = next(line for line in done.stdout.splitlines() if line.startswith("| 200 B |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[1]) >= 5  # seals per message: both sides' inbox, outbox and events at least
    assert all(float(c.rstrip("%")) > 0 for c in cells[2:-1])
    assert all(float(side) > 0 for side in cells[-1].split(" + "))  # WAL KB / msg, both agents


def test_the_chat_bench_checks_its_page_against_the_baseline() -> None:
    """bench/chat.py asserts its page equals the baseline's before timing; a run prints
    the three cases with positive figures."""
    cmd = [sys.executable, str(REPO / "bench" / "chat.py"), "--records", "600", "--peers", "3", "--rounds", "1",
           "--back", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {line[:14].strip(): line[14:].split() for line in done.stdout.splitlines()[2:]}
    assert set(rows) == {"active peer", "silent peer", "old page"}
    assert all(float(x) > 0 for cells in rows.values() for x in cells)


def test_the_connections_bench_checks_both_answers_agree() -> None:
    cmd = [sys.executable, str(REPO / "bench" / "connections.py"), "--sizes", "10,200", "--rounds", "1",
           "--budget", "0.01"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    assert [r[0] for r in rows] == ["10", "200"] and all(float(x) > 0 for r in rows for x in r[1:])
