"""Eight processes pushing versions of one model at once: distinct versions, none lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import weightbase

PROCESSES = 8

_CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    import numpy as np
    import weightbase

    index, home, catalog_url, go = int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
    rng = np.random.default_rng(index)
    weights = {
        "w": rng.standard_normal((64, 64)).astype(np.float32),
        "b": np.full(64, index, np.float32),
    }
    with weightbase.open(home, catalog_url=catalog_url) as wb:
        wb.models.version  # build the service before the start line
        while not go.exists():
            time.sleep(0.005)
        version = wb.models.push("shared", weights, tags=[f"worker-{index}"])
    print(json.dumps({"index": index, "version": version.version, "id": version.id}))
    """
)


@pytest.mark.slow
def test_eight_processes_push_distinct_versions(catalog_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    # create the catalog first, so the children race on pushes rather than on migrations
    weightbase.open(home, catalog_url=catalog_url).close()
    go = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIGHTBASE_")}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(i), str(home), catalog_url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(PROCESSES)
    ]
    time.sleep(1.0)  # let every child import and connect
    go.touch()
    results = []
    for child in children:
        out, err = child.communicate(timeout=240)
        assert child.returncode == 0, err
        assert "Traceback" not in err, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    versions = sorted(r["version"] for r in results)
    assert versions == [f"0.{i}.0" for i in range(1, PROCESSES + 1)]
    assert len({r["id"] for r in results}) == PROCESSES
    with weightbase.open(home, catalog_url=catalog_url) as wb:
        stored = wb.models.versions("shared")
        assert [v.version for v in stored] == versions
        # each worker's content is behind the version it was told it got
        for result in results:
            version = wb.models.version("shared", result["version"])
            assert version.tags == (f"worker-{result['index']}",)
            assert float(wb.models.pull(version, names=["b"])["b"][0]) == result["index"]
        actions = [entry.action for entry in wb.models.history("shared")]
        assert actions.count("model.create") == 1
        assert actions.count("version.create") == PROCESSES
