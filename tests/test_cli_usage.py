"""Usage errors come first: a missing path exits 2 with one line, before torch or a model is loaded."""

import json
import subprocess
import sys

# (command line, what the one-line error must say); "MISSING" is a path that does not exist
COMMANDS = [
    (["crop", "MISSING"], "no such file or folder"),
    (["crop", "MISSING", "--subject", "1,2,3,4", "--aspect", "4:5"], "no such file or folder"),
    (["train", "MISSING", "-o", "OUT"], "no such folder"),
    (["view-train", "MISSING", "--out", "OUT.png"], "no such folder"),
    (["data", "from-crops", "MISSING", "MISSING", "-o", "OUT"], "no such file"),
    (["segment", "MISSING", "-o", "OUT"], "no such folder"),
    (["view", "MISSING", "--out", "OUT.png"], "no such folder"),
    (["eval", "--benchmark", "fcdb", "--data-root", "MISSING"], "no such folder"),
    (["dataset", "check", "MISSING"], "no such folder"),
]

SCRIPT = """
import contextlib, io, json, sys
from gencrop.cli import main
results = []
for argv, _ in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    results.append([code, err.getvalue()])
print(json.dumps({"results": results, "heavy": sorted(m for m in ("torch", "timm") if m in sys.modules)}))
"""


def test_missing_paths_are_usage_errors_before_anything_heavy(tmp_path):
    commands = [
        ([a.replace("MISSING", str(tmp_path / "nosuch")).replace("OUT", str(tmp_path / "out")) for a in argv], message)
        for argv, message in COMMANDS
    ]
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(commands)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.splitlines()[-1])
    for (argv, message), (code, err) in zip(commands, report["results"]):
        assert code == 2, (argv, err)
        assert message in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert report["heavy"] == []
