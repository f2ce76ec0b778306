"""Every benchmark in one command, one table: each figure beside its baseline and its goal.

    .venv/bin/python bench/run_all.py [--replay-events 1000000 | --full] [--only NAME,...]
                                      [--markdown] [--save results.json]

Runs, one after the other (never two at once: they would measure each other), each script
in its own process with ``--json``, and reads the JSON object it prints last; the scripts'
full human output goes to ``bench/data/runs/<time>/<name>.log``. Each script measures a
baseline side by side in the same run (see its docstring for the method), so the ratios hold
on a busy machine better than the absolute figures do.

- ingest: ingest_bench.py, HTTP batches of 1000; baseline a bare aiokafka producer.
- core: detector_bench.py core, 20,000 members; baseline a dict update per event (the floor).
- memory: detector_bench.py memory, 1,000,000 members; baseline a dict member -> last visit.
- e2e: detector_bench.py e2e, 200,000 events; baseline a plain aiokafka consumer, same topic.
- replay: detector_bench.py replay, 1M events (``--full``: 10M); baseline reading the CSV only.
- webhook: webhook_bench.py, live mode at 20 alerts/s; baseline posting the bodies directly.
- bgnbd: bgnbd_bench.py, 1,000,000 members; baseline Nelder-Mead without gradient, same rows.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth) like the tests; starts its own local broker.
Takes about ten minutes on 2 cores (``--full`` adds the 10M replay: several more).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
FULL_REPLAY = 10_000_000


@dataclass(frozen=True, slots=True)
class Row:
    figure: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    goal: str = ""
    reached: bool | None = None  # None: no goal, or the goal is a figure to report

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline


Figures = dict[str, Any]


def _ingest(f: Figures) -> list[Row]:
    eps, base = f["events_per_s"], f["baseline_events_per_s"]
    return [
        Row(
            "ingest, HTTP batches of 1000",
            eps,
            "events/s",
            base,
            "bare aiokafka producer",
            "≥ 50,000 events/s",
            eps >= 50_000,
        ),
        Row(
            "ingest, one event per request at 500/s, p99",
            f["p99_ms"],
            "ms",
            f["baseline_p99_ms"],
            "bare send_and_wait",
        ),
    ]


def _core(f: Figures) -> list[Row]:
    rates, floor = f["events_per_s"], f["events_per_s"]["floor"]
    names = {
        "fixed": "fixed (default) policy",
        "cadence": "cadence policy",
        "bgnbd": "bgnbd policy",
    }
    return [
        Row(
            f"core, {label}, one core",
            rates[key],
            "events/s",
            floor,
            "dict update per event",
            "≥ 200,000 events/s",
            rates[key] >= 200_000,
        )
        for key, label in names.items()
    ]


def _memory(f: Figures) -> list[Row]:
    per = f["bytes_per_member"]
    return [
        Row(
            f"memory per member at {f['members']:,} members",
            per,
            "bytes",
            f["baseline"],
            "dict member -> last visit",
            "≤ 300 bytes",
            per <= 300,
        )
    ]


def _e2e(f: Figures) -> list[Row]:
    ratio = f["detector"] / f["plain"]
    return [
        Row(
            f"detector end to end ({f['events']:,} events, PG checkpoints)",
            f["detector"],
            "events/s",
            f["plain"],
            "plain aiokafka consumer",
            "ratio ≥ 0.3",
            ratio >= 0.3,
        )
    ]


def _replay(f: Figures) -> list[Row]:
    n, wall = f["events"], f["wall_s"]
    rows = [
        Row(
            f"replay {n:,} events from CSV (cadence)",
            n / wall,
            "events/s",
            n / f["baseline_read_s"],
            "read + validate the CSV only",
        ),
        Row(f"replay {n:,} events, wall time", wall, "s", f["baseline_read_s"], "read + validate"),
    ]
    if n != FULL_REPLAY:
        rows.append(
            Row(
                f"replay 10,000,000 events, wall time (extrapolated from {n:,})",
                wall * FULL_REPLAY / n,
                "s",
                goal="report the wall time (--full measures it)",
            )
        )
    else:
        rows[-1] = Row(
            rows[-1].figure, wall, "s", f["baseline_read_s"], "read + validate", "report"
        )
    return rows


def _webhook(f: Figures) -> list[Row]:
    return [
        Row(
            "alert stored -> webhook received, p50",
            f["p50_ms"],
            "ms",
            f["baseline_p50_ms"],
            "direct POST, same body",
        ),
        Row(
            "alert stored -> webhook received, p99",
            f["p99_ms"],
            "ms",
            f["baseline_p99_ms"],
            "direct POST, same body",
            "p99 < 1,000 ms",
            f["p99_ms"] < 1000,
        ),
    ]


def _bgnbd(f: Figures) -> list[Row]:
    return [
        Row(
            f"BG/NBD summarise + fit on {f['members']:,} members, wall",
            f["wall_s"],
            "s",
            goal="< 10 s",
            reached=f["wall_s"] < 10 and f["converged"],
        ),
        Row(
            f"BG/NBD summarise + fit on {f['members']:,} members, CPU",
            f["cpu_s"],
            "s",
            f["baseline_nelder_mead_collapsed_cpu_s"],
            "Nelder-Mead, same rows",
        ),
    ]


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    argv: list[str]
    rows: Callable[[Figures], list[Row]]


def steps(replay_events: int) -> list[Step]:
    detector = str(BENCH / "detector_bench.py")
    return [
        Step("ingest", [str(BENCH / "ingest_bench.py")], _ingest),
        Step("core", [detector, "core"], _core),
        Step("memory", [detector, "memory"], _memory),
        Step("e2e", [detector, "e2e"], _e2e),
        Step("replay", [detector, "replay", "--events", str(replay_events)], _replay),
        Step("webhook", [str(BENCH / "webhook_bench.py")], _webhook),
        Step("bgnbd", [str(BENCH / "bgnbd_bench.py")], _bgnbd),
    ]


# -- the machine -------------------------------------------------------------------------------


def _meminfo_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def machine() -> dict[str, Any]:
    mem = _meminfo_gib()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(mem, 1) if mem is not None else None,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "commit": _commit(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
    }


# -- running -----------------------------------------------------------------------------------


def run_step(step: Step, logs: Path, timeout: float) -> tuple[list[Row], dict[str, Any]]:
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"== {step.name}: {' '.join(Path(a).name for a in step.argv)}  (load {load})", flush=True)
    started = time.perf_counter()
    log = logs / f"{step.name}.log"
    with log.open("w") as out:
        try:
            done = subprocess.run(
                [sys.executable, *step.argv, "--json"],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=out,
                text=True,
                timeout=timeout,
                check=False,
            )
            stdout, code = done.stdout, done.returncode
        except subprocess.TimeoutExpired as exc:
            stdout = exc.stdout if isinstance(exc.stdout, str) else ""
            code = -1
        out.write(stdout)
    took = time.perf_counter() - started
    info = {"name": step.name, "seconds": round(took, 1), "load_at_start": load, "exit": code}
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if code != 0 or not lines:
        print(f"   failed (exit {code}) after {took:.0f}s: see {log}", flush=True)
        return [], info
    figures: Figures = json.loads(lines[-1])
    info["figures"] = figures
    print(f"   done in {took:.0f}s", flush=True)
    return step.rows(figures), info


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if unit in ("ms", "s") or abs(value) < 100:
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
    return f"{value:,.0f}"


def _verdict(row: Row) -> str:
    if not row.goal:
        return ""
    if row.reached is None:
        return row.goal
    return f"{row.goal}: {'reached' if row.reached else 'NOT reached'}"


def table(rows: list[Row], markdown: bool) -> str:
    head = ("figure", "value", "unit", "baseline", "baseline is", "ratio", "goal")
    body = [
        (
            r.figure,
            _fmt(r.value, r.unit),
            r.unit,
            _fmt(r.baseline, r.unit),
            r.baseline_name,
            f"{r.ratio:.2f}" if r.ratio is not None else "—",
            _verdict(r),
        )
        for r in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body, strict=True)]
    right = {1, 3, 5}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(head), line(tuple("-" * w for w in widths)), *map(line, body)])


def render(run: dict[str, Any], markdown: bool) -> None:
    """The header and the table of a run (from its steps' figures, so a saved run re-renders)."""
    host, infos = run["machine"], run["steps"]
    makers = {s.name: s.rows for s in steps(FULL_REPLAY)}
    rows = [r for i in infos if "figures" in i for r in makers[i["name"]](i["figures"])]
    print(
        f"Lapse benchmarks, {host['date']}, commit {host['commit']}\n"
        f"machine: {host['cpus']} CPUs ({host['cpu_model']}), {host['memory_gib']} GiB, "
        f"Python {host['python']}, {host['platform']}\n"
        f"load average (1, 5, 15 min): {host['load_before']} before, "
        f"{host.get('load_after')} after; 1-min load at each step's start: "
        + ", ".join(f"{i['name']} {i['load_at_start'][0]}" for i in infos)
    )
    print()
    print(table(rows, markdown=False))
    if markdown:
        print()
        print(table(rows, markdown=True))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replay-events", type=int, default=1_000_000, help="events replayed")
    p.add_argument("--full", action="store_true", help="replay 10,000,000 events")
    p.add_argument("--only", default="", help="comma-separated step names (default: all)")
    p.add_argument("--markdown", action="store_true", help="print the table in Markdown too")
    p.add_argument("--save", type=Path, help="write machine, steps and figures as JSON here")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per step")
    p.add_argument("--render", type=Path, help="print the table of a run saved with --save")
    args = p.parse_args()
    if args.render:
        render(json.loads(args.render.read_text()), args.markdown)
        return

    chosen = steps(FULL_REPLAY if args.full else args.replay_events)
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = wanted - {s.name for s in chosen}
        if unknown:
            p.error(f"unknown step(s): {', '.join(sorted(unknown))}")
        chosen = [s for s in chosen if s.name in wanted]

    host = machine()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    logs = BENCH / "data" / "runs" / stamp
    logs.mkdir(parents=True, exist_ok=True)
    print(f"logs in {logs}", flush=True)
    rows: list[Row] = []
    infos: list[dict[str, Any]] = []
    for step in chosen:
        got, info = run_step(step, logs, args.timeout)
        rows += got
        infos.append(info)
    host["load_after"] = [round(x, 2) for x in os.getloadavg()]

    print()
    render({"machine": host, "steps": infos}, args.markdown)
    failed = [i["name"] for i in infos if "figures" not in i]
    if failed:
        print(f"\nfailed: {', '.join(failed)} (logs in {logs})")
    if args.save:
        doc = {
            "machine": host,
            "steps": infos,
            "rows": [{**asdict(r), "ratio": r.ratio} for r in rows],
        }
        args.save.write_text(json.dumps(doc, indent=2))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
