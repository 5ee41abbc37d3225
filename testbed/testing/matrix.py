"""`make test`: unit tests, then every conformance suite in every mode, and a verdict table.

One testbed per (mode, routing, podNetwork) is shared by all suites of that run; the summary
prints suite x mode -> passed/failed/skipped with the skip reasons.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REPORTS = PROJECT_ROOT / "reports"
# Suites that exercise services run once per proxy mode; the rest once per routing setup.
SERVICE_SUITES = ["pod_to_service", "external_to_service", "dns", "policy", "ingress"]
MODE_AGNOSTIC_RUNS = [
    # (label, suites, extra pytest args)
    ("vxlan+flat", ["pod_to_pod", "policy"], ["--routing", "vxlan", "--pod-network", "flat"]),
    ("reference-cni", ["pod_to_pod"], ["--topology", "suites/topology-refcni.yaml"]),
    ("lifecycle", ["lifecycle"], []),
]


@dataclass
class RunResult:
    """Counts and skip reasons of one pytest run, read from its JUnit XML."""

    label: str
    suite: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)
    seconds: float = 0.0
    rc: int = 0


def suite_of(classname: str) -> str:
    """`suites.pod_to_pod.test_x` -> `pod_to_pod`; `tests.cni.test_y` -> `unit`."""
    parts = classname.split(".")
    return parts[1] if parts[0] == "suites" and len(parts) > 1 else "unit"


def parse_junit(path: Path, label: str) -> dict[str, RunResult]:
    """Per-suite results of one pytest run."""
    results: dict[str, RunResult] = {}
    if not path.exists():
        return results
    for case in ET.parse(path).getroot().iter("testcase"):
        suite = suite_of(case.get("classname", ""))
        result = results.setdefault(suite, RunResult(label, suite))
        if case.find("failure") is not None or case.find("error") is not None:
            result.failed += 1
        elif (skip := case.find("skipped")) is not None:
            result.skipped += 1
            result.reasons.append(skip.get("message", "").strip())
        else:
            result.passed += 1
    return results


def run_pytest(label: str, paths: list[str], extra: list[str]) -> list[RunResult]:
    junit = REPORTS / f"junit-{label}.xml"
    junit.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs",
           f"--junitxml={junit}", *paths, *extra]
    print(f"\n=== {label}: {' '.join(paths)} ===", flush=True)
    start = time.monotonic()
    rc = subprocess.run(cmd, cwd=PROJECT_ROOT).returncode
    results = list(parse_junit(junit, label).values())
    if rc not in (0, 5) and not any(r.failed for r in results):
        results.append(RunResult(label, "pytest", failed=1, reasons=[f"pytest exited {rc}"]))
    elapsed = time.monotonic() - start
    for r in results:
        r.seconds = elapsed
        r.rc = rc
    return results


def existing(suites: list[str]) -> list[str]:
    return [s for s in suites if (PROJECT_ROOT / "suites" / s).is_dir()]


def summary(results: list[RunResult]) -> Table:
    table = Table(title="conformance verdicts", header_style="bold")
    for col in ("suite", "run", "passed", "failed", "skipped", "run time", "skip reasons"):
        table.add_column(col)
    for r in results:
        verdict = "[red]" if r.failed else "[green]"
        reasons = "; ".join(sorted(set(r.reasons)))[:120]
        table.add_row(r.suite, r.label, f"{verdict}{r.passed}", str(r.failed), str(r.skipped),
                      f"{r.seconds:.0f}s", reasons)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--modes", default="iptables nftables ebpf")
    parser.add_argument("--unit", action="store_true", help="run the unit tests first")
    args = parser.parse_args(argv)
    REPORTS.mkdir(exist_ok=True)
    results: list[RunResult] = []
    started = time.monotonic()
    if args.unit:
        results += run_pytest("unit", ["tests"], [])
    for mode in args.modes.split():
        suites = existing(["pod_to_pod", *SERVICE_SUITES])
        # One pytest process per mode: the session-scoped testbed is shared by all suites.
        results += run_pytest(mode, [f"suites/{s}" for s in suites], ["--mode", mode])
    for label, suites, extra in MODE_AGNOSTIC_RUNS:
        found = existing(suites)
        if found:
            results += run_pytest(label, [f"suites/{s}" for s in found], extra)
    console = Console(width=160)
    console.print(summary(results))
    total_failed = sum(r.failed for r in results)
    total_passed = sum(r.passed for r in results)
    total_skipped = sum(r.skipped for r in results)
    console.print(f"total time {time.monotonic() - started:.0f}s")
    if total_failed:
        console.print(f"logs of failing runs are under {REPORTS}/<testbed>/logs")
    # The plain closing line CI reads.
    print(f"{total_passed} passed, {total_failed} failed, {total_skipped} skipped")
    return 1 if total_failed or total_passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
