"""How long the ``stepwise`` command and the packages take to start, against ``import torch``'s own time.

Each case runs in a fresh Python process, as a user's command does: ``import torch``; ``stepwise --help``; a usage
error (``stepwise analyse --fence 0``, which stops at the parser with exit status 2); ``import stepwise``; and
``import stepwise, perturb``. The cases run in alternating order, round after round, so that a machine that gets
busier or quieter during the run shifts every case alike; each figure is the median over the rounds, and each
difference is taken to the median of ``import torch`` measured in the same run. The command must answer within a
second of torch's own time. Each case also reports which heavy optional libraries it imported (none should be).

Run from the repository root::

    python examples/benchmark_startup.py                       # this checkout, 15 rounds
    python examples/benchmark_startup.py --tree /tmp/old --rounds 9   # another checkout of the sources
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = (
    "pandas",
    "matplotlib",
    "seaborn",
    "scipy",
    "captum",
    "perturb",
    "sklearn",
    "plotly",
    "PIL",
)  # torch imports tqdm
BUDGET_S = 1.0  # the command's start may exceed torch's own by at most this

# The command runs as its console script does (``from stepwise.cli import main; sys.exit(main())``), in-process,
# so that the sources of --tree are the ones imported.
COMMAND = (
    "import sys\n"
    "sys.argv = ['stepwise', *{argv!r}]\n"
    "from stepwise.cli import main\n"
    "try:\n"
    "    main()\n"
    "except SystemExit as stop:\n"
    "    code = stop.code\n"
)
REPORT = "\nimport sys, json\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))))\n"

CASES = {
    "import torch": "import torch",
    "stepwise --help": COMMAND.format(argv=["--help"]),
    "usage error": COMMAND.format(argv=["analyse", "--fence", "0"]),
    "import stepwise": "import stepwise",
    "import stepwise, perturb": "import stepwise, perturb",
}


def run_once(code: str, tree: Path) -> tuple[float, list[str]]:
    """Seconds of wall-clock time for a fresh interpreter to run ``code``, and the heavy modules it imported."""
    env = {**os.environ, "PYTHONPATH": str(tree), "MPLBACKEND": "Agg"}
    script = code + REPORT.format(heavy=HEAVY)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tree, check=False
    )
    seconds = time.perf_counter() - start
    lines = result.stdout.strip().splitlines()
    if not lines or not lines[-1].startswith("["):
        raise RuntimeError(f"the case failed: {result.stderr[-2000:]}")
    return seconds, json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="rounds of all cases (default: 15)")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the source tree to measure (default: this one)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    tree = args.tree.resolve()
    names = list(CASES)
    times: dict[str, list[float]] = {name: [] for name in names}
    heavy: dict[str, list[str]] = {}
    for name in names:  # one warm-up round: the files in the OS cache, as for a user's second command
        heavy[name] = run_once(CASES[name], tree)[1]
    for round_ in range(args.rounds):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            times[name].append(run_once(CASES[name], tree)[0])
    torch_s = statistics.median(times["import torch"])
    print(f"start-up of {tree} (Python {sys.version.split()[0]}), median of {args.rounds} alternating rounds:")
    print(f"{'case':<26} {'median s':>9} {'- torch s':>10} {'min s':>7} {'max s':>7}  heavy modules imported")
    for name in names:
        median = statistics.median(times[name])
        extra = "" if name == "import torch" else f"{median - torch_s:+.3f}"
        listed = ", ".join(heavy[name]) or "none"
        print(f"{name:<26} {median:>9.3f} {extra:>10} {min(times[name]):>7.3f} {max(times[name]):>7.3f}  {listed}")
    worst = max(statistics.median(times[n]) for n in ("stepwise --help", "usage error")) - torch_s
    verdict = "within" if worst <= BUDGET_S else "OVER"
    print(f"the command answers {worst:+.3f} s after torch's own import time: {verdict} the {BUDGET_S:g} s budget")


if __name__ == "__main__":
    main()
