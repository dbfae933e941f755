"""Run every pyperf benchmark here and print the side-by-side tables of docs/performance.md.

    .venv/bin/python benchmarks/run.py                 # pyperf's default (thorough) settings
    .venv/bin/python benchmarks/run.py --fast          # quick numbers
    .venv/bin/python benchmarks/run.py --only core,propagation
    .venv/bin/python benchmarks/run.py --tables-only   # tables from the last run's results

Results go to benchmarks/results/<name>.json (pyperf's format: ``python -m pyperf compare_to``
and ``pyperf stats`` read them). Pairs are found by name: ``X [tracing-api]`` with
``X [opentelemetry]``, and ``X.ours`` with ``X.otel`` (and ``X.bare``, the same work untraced,
when there is one: the overhead is then the difference).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pyperf

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def run(names: List[str], extra: List[str]) -> None:
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        output = RESULTS / f"{name}.json"
        output.unlink(missing_ok=True)
        command = [sys.executable, str(HERE / f"bench_{name}.py"), "--quiet", "-o", str(output), *extra]
        print("$", " ".join(command[1:]), file=sys.stderr, flush=True)
        subprocess.run(command, check=True)


def means(path: Path) -> Dict[str, float]:
    suite = pyperf.BenchmarkSuite.load(str(path))
    return {bench.get_name(): bench.mean() for bench in suite.get_benchmarks()}


def fmt(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e9:.0f} ns"


def pairs(values: Dict[str, float]) -> List[Tuple[str, float, float, Optional[float]]]:
    found = []
    for name, ours in values.items():
        if name.endswith(" [tracing-api]"):
            case = name[: -len(" [tracing-api]")]
            theirs = values.get(f"{case} [opentelemetry]")
            if theirs is not None:
                found.append((case, ours, theirs, None))
        elif name.endswith(".ours"):
            case = name[: -len(".ours")]
            theirs = values.get(f"{case}.otel")
            if theirs is not None:
                found.append((case, ours, theirs, values.get(f"{case}.bare")))
    return found


def table(name: str, values: Dict[str, float]) -> str:
    rows = [f"### {name}", "",
            "| case | tracing-api | OpenTelemetry | OpenTelemetry / tracing-api |",
            "| --- | ---: | ---: | ---: |"]
    for case, ours, theirs, bare in pairs(values):
        if bare is None:
            rows.append(f"| {case} | {fmt(ours)} | {fmt(theirs)} | **{theirs / ours:.1f}x** |")
        else:
            extra_ours, extra_theirs = ours - bare, theirs - bare
            ratio = f"**{extra_theirs / extra_ours:.1f}x**" if extra_ours > 0 else "n/a"
            rows.append(
                f"| {case}: overhead over the untraced {fmt(bare)} | +{fmt(extra_ours)} | "
                f"+{fmt(extra_theirs)} | {ratio} |"
            )
    unpaired = sorted(n for n in values if not any(n.startswith(p[0]) for p in pairs(values)))
    for other in unpaired:
        rows.append(f"| {other} | {fmt(values[other])} | | |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated benchmark names (bench_<name>.py)")
    parser.add_argument("--tables-only", action="store_true")
    args, extra = parser.parse_known_args()
    available = sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))
    names = args.only.split(",") if args.only else available
    if not args.tables_only:
        run(names, extra)
    for name in names:
        path = RESULTS / f"{name}.json"
        if path.exists():
            print(table(name, means(path)))
            print()


if __name__ == "__main__":
    main()
