"""The provenance block of every report: the real git state of this checkout, the machine, the command."""
import json
import os
import subprocess
from pathlib import Path

from utils.evaluation.provenance import code_hash, describe, finish, provenance, write_report

ROOT = Path(__file__).resolve().parents[1]


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_block_names_this_checkout_the_machine_and_the_command():
    block = finish(provenance(["benchmarks/cache.py", "--rounds", "1"], note="shared machine"))
    assert block["commit"] == git("rev-parse", "HEAD")
    assert block["dirty"] == bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!reports"))
    assert block["command"] == "python benchmarks/cache.py --rounds 1"
    assert block["machine"]["cpu_count"] == os.cpu_count() and block["machine"]["cpu"]
    assert len(block["load_average"]) == len(block["load_average_after"]) == 3
    assert block["note"] == "shared machine"
    line = describe(block)
    assert block["commit"][:10] in line and "`python benchmarks/cache.py --rounds 1`" in line


def test_outside_a_checkout_the_commit_is_unknown(tmp_path):
    from utils.evaluation.provenance import git_state

    assert git_state(tmp_path) == {"commit": None, "dirty": None}


def test_report_json_and_its_markdown_are_written_together(tmp_path):
    import numpy as np

    block = provenance(["x.py"])
    path = write_report(tmp_path / "r" / "bench.json", {"rate": np.float64(2.5), "n": np.int64(3)}, block, "| 2.5 |\n")
    assert json.loads(path.read_text()) == {"provenance": block, "rate": 2.5, "n": 3}
    assert (tmp_path / "r" / "bench.md").read_text() == "| 2.5 |\n"
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["bench.json", "bench.md"]


def test_code_hash_changes_with_the_code(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "script.py").write_text("print(1)\n")
    before = code_hash([tmp_path / "pkg", tmp_path / "script.py"])
    assert before == code_hash([tmp_path / "script.py", tmp_path / "pkg"])  # order does not matter
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert code_hash([tmp_path / "pkg", tmp_path / "script.py"]) != before
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    assert code_hash([tmp_path / "pkg", tmp_path / "script.py"]) == before
    (tmp_path / "pkg" / "b.py").write_text("")  # a new module counts too
    assert code_hash([tmp_path / "pkg", tmp_path / "script.py"]) != before
