"""The registry works on NumPy alone: its tests pass where ``import torch`` fails.

torch is an extra (``weightbase[torch]``), never a core dependency. The registry's
tests run again in a child process whose import system cannot see torch, as if it
were not installed; tests that need torch must skip there, all others must pass.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NUMPY_ONLY = ["test_service.py", "test_analysis.py", "test_diff.py"]

# Replaces the path finder with one that cannot find torch, so `import torch` raises
# ModuleNotFoundError and importlib.util.find_spec("torch") is None, as on a machine
# without it; then runs pytest in this process.
_WITHOUT_TORCH = textwrap.dedent(
    """
    import importlib.machinery
    import sys

    class PathFinderWithoutTorch(importlib.machinery.PathFinder):
        @classmethod
        def find_spec(cls, fullname, path=None, target=None):
            if fullname.partition(".")[0] == "torch":
                return None
            return super().find_spec(fullname, path, target)

    assert "torch" not in sys.modules
    sys.meta_path[:] = [
        PathFinderWithoutTorch if finder is importlib.machinery.PathFinder else finder
        for finder in sys.meta_path
    ]
    try:
        import torch
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("torch is still importable")

    import pytest

    status = pytest.main(sys.argv[1:])
    assert "torch" not in sys.modules
    raise SystemExit(status)
    """
)


def test_numpy_only_registry_tests_pass_without_torch() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _WITHOUT_TORCH,
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            # one catalog is enough here: which tests need torch does not depend on it
            "-k",
            "not postgres",
            *(str(HERE / name) for name in NUMPY_ONLY),
        ],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    passed = re.search(r"(\d+) passed", output)
    assert passed is not None, output
    assert int(passed.group(1)) >= 50, output
    # the torch tests skip for torch, which shows the child really was without it
    assert "could not import 'torch'" in output, output
