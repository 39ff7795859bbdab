"""The README's quickstart runs as written, and its commands are the CI's."""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _readme():
    with open(os.path.join(ROOT, "README.md")) as fh:
        return fh.read()


@pytest.mark.slow
def test_quickstart_runs(capsys):
    code = re.search(r"```python\n(.*?)```", _readme(), re.S).group(1)
    assert len(code.strip().splitlines()) <= 14
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "pgd" in out and "accuracy_mean" in out


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n(.*?)```", _readme(), re.S)
    test_command = next(c.strip() for c in commands if "tox -e py" in c)
    with open(os.path.join(ROOT, ".ci", "run")) as fh:
        assert test_command in fh.read()
    # CI runs the fast suite and the tests marked slow
    assert test_command.split("tox -e ")[1].split()[0].split(",") == ["py", "slow"]
