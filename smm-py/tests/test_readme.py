"""Every Python block of the READMEs runs as written, in order, from the
repository root (a file's blocks share one namespace, as a reader's session
would)."""

import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
READMES = ["README.md", "smm-py/README.md"]


def blocks(path):
    text = (ROOT / path).read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


@pytest.mark.parametrize("readme", READMES)
def test_every_python_block_runs(readme, monkeypatch):
    found = blocks(readme)
    assert found, f"{readme} has no Python block"
    monkeypatch.chdir(ROOT)
    namespace = {"__name__": "__readme__"}
    for i, code in enumerate(found):
        try:
            exec(compile(code, f"{readme} block {i + 1}", "exec"), namespace)
        except Exception as e:  # pragma: no cover - the failure names the block
            raise AssertionError(f"{readme}, Python block {i + 1} fails: {e!r}\n{code}") from e


def test_the_root_readme_is_a_short_path():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 250, f"README.md is {lines} lines; reference belongs in the crates' READMEs"
    assert os.path.exists(ROOT / "smm-ffi" / "README.md")
