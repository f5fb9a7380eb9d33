"""``python -m bench``: prepare pages, start the stand-ins once, run every row interleaved, write the report.

Schedule (default N = 200,000): a short dlt loader-format probe; then ``--repeat`` rounds, each running
floor, naive, dlt, arm-etl and phases once (the order rotates per round); arm-etl-core (only if named in
``--rows``) ``--core-repeat`` times; then the memory row. Medians per row. The slow naive and dlt rows
read a prefix of the pages (``--baseline-items``, default 20,000). The memory row runs the flow at 10·N
if the time budget allows (``--x10 full``), else at N/10 (``--x10 tenth``: the ratio is then RSS at N over
RSS at N/10, the same 10× growth); ``--x10 auto`` (default) picks by the time left in ``--budget-s``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import report
from bench.data import TABLE, prepare

ROOT = Path(__file__).resolve().parent.parent
MAIN_ROWS = ("floor", "naive", "dlt", "arm-etl", "phases")
ALL_ROWS = (*MAIN_ROWS, "arm-etl-core", "arm-etl-10x")
DEFAULT_ROWS = (*MAIN_ROWS, "arm-etl-10x")  # arm-etl-core (the flow's phases without Prefect) is a diagnostic
DLT_FORMATS = ("insert_values", "csv")


def flow_default(parameter: str) -> Any:
    """The segment flow's own default for ``parameter``: the benchmark measures what users run."""
    import inspect

    from flows.segment import segment_etl

    return inspect.signature(segment_etl.fn).parameters[parameter].default


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "-"


class StandInCPU:
    """CPU seconds of the stand-ins: this process (moto's threads), the replay endpoint, PostgreSQL, Prefect's API."""

    def __init__(self, stack: Any):
        import psutil

        self.psutil = psutil
        self.stack = stack
        self.me = psutil.Process()

    def _pg(self) -> float:
        total = 0.0
        pgdata = str(self.stack.tmp)
        for p in self.psutil.process_iter(["name", "cmdline"]):
            try:
                cmd = " ".join(p.info["cmdline"] or ())
                if p.info["name"] == "postgres" and "-D" in cmd and pgdata in cmd:  # the postmaster
                    t = p.cpu_times()
                    total += t.user + t.system + t.children_user + t.children_system
                    for c in p.children():  # live backends and workers
                        ct = c.cpu_times()
                        total += ct.user + ct.system
            except (self.psutil.NoSuchProcess, self.psutil.AccessDenied):
                continue
        return total

    def snapshot(self) -> dict[str, float]:
        t = self.me.cpu_times()
        out = {"moto": t.user + t.system, "postgres": self._pg(), "replay": 0.0, "prefect": 0.0}
        for c in self.me.children(recursive=True):
            try:
                ct = c.cpu_times()
                cmd = " ".join(c.cmdline())
            except (self.psutil.NoSuchProcess, self.psutil.AccessDenied):
                continue
            if "bench.replay" in cmd:
                out["replay"] += ct.user + ct.system
            elif "uvicorn" in cmd or "prefect" in cmd:
                out["prefect"] += ct.user + ct.system
        return out


class Runner:
    def __init__(self, stack: Any, patches: list[str]):
        self.stack = stack
        self.env = stack.env()
        if patches:
            self.env["BENCH_PATCHES"] = ",".join(patches)
        self.runs: list[dict[str, Any]] = []
        self.seq = 0
        self.cpu = StandInCPU(stack)

    def child(self, row: str, table: str = TABLE, profile: Path | None = None, **opts: Any) -> dict[str, Any]:
        """Run one row in a fresh process after resetting S3 and the warehouse; returns its result document."""
        self.stack.reset()
        self.seq += 1
        result = self.stack.tmp / f"result-{self.seq}.json"
        output = self.stack.tmp / f"result-{self.seq}.log"
        cmd = [sys.executable, "-m", "bench.run_one", row, "--table", table, "--result", str(result)]
        for k, v in opts.items():
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        if profile is not None:  # py-spy samples the threads holding the GIL; collapsed stacks
            spy = str(Path(sys.executable).with_name("py-spy"))
            cmd = [spy, "record", "--gil", "--rate", "50", "--format", "raw", "--output", str(profile), "--", *cmd]
        before = self.cpu.snapshot()
        t0 = time.perf_counter()
        with open(output, "wb") as out:
            proc = subprocess.Popen(cmd, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        after = self.cpu.snapshot()
        if proc.returncode != 0 or not result.exists():
            tail = output.read_text(errors="replace").splitlines()[-25:]
            raise RuntimeError(f"row {row} failed (exit {proc.returncode}): {' '.join(cmd)}\n" + "\n".join(tail))
        doc = orjson.loads(result.read_bytes())
        doc["child_cpu_s"] = usage.ru_utime + usage.ru_stime
        doc["child_wall_s"] = wall
        doc["stand_in_cpu_s"] = {k: round(after[k] - before[k], 2) for k in after}
        return doc

    def record(self, doc: dict[str, Any], rep: int, label: str | None = None) -> None:
        for name, r in doc["rows"].items():
            r = dict(r)
            r.update(
                name=label or name,
                rep=rep,
                child_cpu_s=doc["child_cpu_s"],
                child_wall_s=doc["child_wall_s"],
                stand_in_cpu_s=doc["stand_in_cpu_s"],
                patches=doc.get("patches") or [],
            )
            self.runs.append(r)
            si = doc["stand_in_cpu_s"]
            log(
                f"  {r['name']}: {r['items']:,} items in {r['wall_s']:.2f}s = {r['items_per_s']:,.0f} items/s, "
                f"CPU {r['cpu_s']:.2f}s, peak RSS {r['peak_rss_mb']:.0f} MB"
                + (
                    " (halves {:.0f} → {:.0f})".format(*r["rss_halves_mb"])
                    if len(r.get("rss_halves_mb") or ()) == 2
                    else ""
                )
                + (
                    f" | stand-ins CPU: postgres {si['postgres']:.1f}s, moto {si['moto']:.1f}s, "
                    f"prefect {si['prefect']:.1f}s, replay {si['replay']:.1f}s"
                    if name in doc["rows"] and list(doc["rows"]).index(name) == 0
                    else ""
                )
            )


def _prefix_pages(index: list[list[Any]], target: int) -> tuple[int, int]:
    """Whole pages from the start holding at least ``target`` items: (pages, items)."""
    items = pages = 0
    for p in index:
        if items >= target:
            break
        items, pages = items + p[2], pages + 1
    return pages, items


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--items", type=int, default=200_000, help="N items (default 200,000)")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved repetitions of every main row (default 3)")
    ap.add_argument("--core-repeat", type=int, default=1, help="runs of arm-etl-core (flow phases without Prefect)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where latest.{md,json,png} go")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "bench" / ".cache", help="rendered pages (reused)")
    ap.add_argument(
        "--rows",
        default=",".join(DEFAULT_ROWS),
        help=f"comma-separated subset of {','.join(ALL_ROWS)} (default: all but arm-etl-core)",
    )
    ap.add_argument("--baseline-items", type=int, default=20_000, help="items for the slow naive and dlt rows")
    ap.add_argument("--x10", choices=("auto", "full", "tenth"), default="auto", help="how the memory row runs")
    ap.add_argument(
        "--budget-s",
        type=float,
        default=570,
        help="time budget --x10 auto plans against, counted from --started-at (default 570 s)",
    )
    ap.add_argument(
        "--started-at",
        type=float,
        default=None,
        help="Unix time the budget counts from (make bench passes its own start, so the venv counts too)",
    )
    ap.add_argument(
        "--pages-per-chunk",
        type=int,
        default=flow_default("pages_per_chunk"),
        help="arm-etl chunk size in 1 MB pages (default: the segment flow's)",
    )
    ap.add_argument(
        "--max-in-flight",
        type=int,
        default=flow_default("max_in_flight"),
        help="arm-etl chunks in flight (default: the segment flow's)",
    )
    ap.add_argument("--dlt-formats", default=",".join(DLT_FORMATS), help="dlt loader_file_format candidates")
    ap.add_argument("--dlt-probe-items", type=int, default=5_000, help="items per dlt format probe")
    ap.add_argument(
        "--patch", action="append", default=[], help="experiment: apply bench.patches NAME in the arm-etl rows"
    )
    ap.add_argument("--profile", default="", help="comma-separated rows to run once more under py-spy (GIL samples)")
    ap.add_argument("--notes", type=Path, default=ROOT / "bench" / "NOTES.md", help="appended to latest.md")
    ap.add_argument(
        "--render-only", action="store_true", help="rewrite latest.md and latest.png from latest.json (and the notes)"
    )
    args = ap.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = set(rows) - set(ALL_ROWS)
    if unknown:
        ap.error(f"unknown rows: {', '.join(sorted(unknown))}")
    if args.items < 1 or args.repeat < 1:
        ap.error("--items and --repeat must be positive")
    from bench.patches import PATCHES

    bad = set(args.patch) - set(PATCHES)
    if bad:
        ap.error(f"unknown patches: {', '.join(sorted(bad))} (known: {', '.join(PATCHES)})")
    args.row_list = rows
    return args


def _notes(path: Path | None) -> list[str]:
    return path.read_text().strip().splitlines() if path and path.exists() else []


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_only:
        doc = orjson.loads((args.out / "latest.json").read_bytes())
        report.write(args.out, doc, _notes(args.notes))
        print(report.render_md(doc, _notes(args.notes)))
        return 0
    rows = args.row_list
    started = datetime.now(UTC)
    t_start = time.perf_counter()
    already_s = max(0.0, time.time() - args.started_at) if args.started_at else 0.0  # e.g. make's venv step
    load_before = load_average()
    log(f"N={args.items:,}, repeat={args.repeat}, rows={','.join(rows)}; load average {load_before}")
    pages = prepare(args.items, args.seed, args.cache_dir, log=log)
    index_path = pages.bin_path.with_suffix(".json")
    nb, baseline_items = _prefix_pages(pages.index, min(args.items, args.baseline_items))
    baseline_table = TABLE if nb >= pages.pages else f"{TABLE}.p{nb}"
    tenth_pages, tenth_items = _prefix_pages(pages.index, max(1, args.items // 10))
    tenth_table = f"{TABLE}.p{tenth_pages}"

    from bench.stack import Stack

    tables = {t: pages.schema(t) for t in (TABLE, f"{TABLE}.x10", tenth_table)}
    stack = Stack(pages, index_path, tables)
    settings: dict[str, Any] = {
        "seed": args.seed,
        "repeat": args.repeat,
        "core_repeat": args.core_repeat,
        "pages": pages.pages,
        "page_mb": pages.nbytes / 1e6,
        "bytes_per_item": pages.nbytes / max(1, pages.items),
        "pages_per_chunk": args.pages_per_chunk,
        "max_in_flight": args.max_in_flight,
        "baseline_items": baseline_items,
        "generate_s": round(pages.generate_s, 1),
        "load_before": load_before,
        "patches": args.patch,
    }
    with stack.running(log) as st:
        env_info = report.environment(st.local.warehouse_url)
        runner = Runner(st, args.patch)
        arm_opts = {"pages_per_chunk": args.pages_per_chunk, "max_in_flight": args.max_in_flight}

        dlt_format = None
        if "dlt" in rows:
            formats = [f.strip() for f in args.dlt_formats.split(",") if f.strip()]
            dlt_format = formats[0]
            if len(formats) > 1:
                np_, probe_items = _prefix_pages(pages.index, min(baseline_items, args.dlt_probe_items))
                probe: dict[str, float] = {}
                for fmt in formats:
                    try:
                        doc = runner.child("dlt", f"{TABLE}.p{np_}", format=fmt)
                    except RuntimeError as exc:
                        log(f"dlt probe: {fmt} failed: {str(exc).splitlines()[-1]}")
                        continue
                    probe[fmt] = doc["rows"]["dlt"]["items_per_s"]
                    log(f"dlt probe: {fmt} on {probe_items:,} items: {probe[fmt]:,.0f} items/s")
                if probe:
                    dlt_format = max(probe, key=lambda f: probe[f])
                settings["dlt_probe"] = ", ".join(f"`{f}` {v:,.0f} items/s" for f, v in probe.items())
            settings["dlt_format"] = dlt_format

        def run_row(row: str, rep: int) -> None:
            if row in ("naive", "dlt"):
                extra = {"format": dlt_format} if row == "dlt" else {}
                runner.record(runner.child(row, baseline_table, **extra), rep)
            elif row in ("arm-etl", "arm-etl-core", "phases"):
                runner.record(runner.child(row, TABLE, **arm_opts), rep)
            else:
                runner.record(runner.child(row, TABLE), rep)

        if "arm-etl-10x" in rows and args.x10 != "full":
            # First, so it is also the warm-up: the stand-ins' first flow run (Prefect's first task runs,
            # PostgreSQL's first schemas) costs them ~1.5× the CPU of later ones.
            log(f"memory baseline (and warm-up): arm-etl on {tenth_items:,} items (N/10)")
            runner.record(runner.child("arm-etl", tenth_table, **arm_opts), 0, label="arm-etl-tenth")

        schedule = [r for r in MAIN_ROWS if r in rows]
        for rep in range(args.repeat):
            k = rep % len(schedule) if schedule else 0
            for row in schedule[k:] + schedule[:k]:
                log(f"round {rep + 1}/{args.repeat}: {row}")
                run_row(row, rep)
        if "arm-etl-core" in rows:
            for rep in range(args.core_repeat):
                log(f"arm-etl-core {rep + 1}/{args.core_repeat}")
                run_row("arm-etl-core", rep)

        if "arm-etl-10x" in rows:
            mode = args.x10
            arm = [r for r in runner.runs if r["name"] == "arm-etl"]
            elapsed = already_s + time.perf_counter() - t_start
            if mode == "auto":
                rate = min(r["items_per_s"] for r in arm) if arm else 0.0
                need = 10 * args.items / rate * 1.15 + 10 if rate else float("inf")
                mode = "full" if elapsed + need + 20 <= args.budget_s else "tenth"
                log(f"memory row: 10·N needs ~{need:.0f}s, {args.budget_s - elapsed:.0f}s left of the budget → {mode}")
            settings["x10_mode"] = mode
            if mode == "full":
                log(f"memory row: arm-etl on {10 * args.items:,} items")
                runner.record(runner.child("arm-etl-10x", f"{TABLE}.x10", **arm_opts), 0)

        if args.profile:
            prof_dir = args.out / "profiles"
            prof_dir.mkdir(parents=True, exist_ok=True)
            for row in [r.strip() for r in args.profile.split(",") if r.strip()]:
                raw = prof_dir / f"{row}.raw"
                log(f"profiling {row} (py-spy --gil) → {raw}")
                opts = arm_opts if row in ("arm-etl", "arm-etl-core", "phases") else {}
                table = baseline_table if row in ("naive", "dlt") else TABLE
                if row == "dlt":
                    opts = {"format": dlt_format or "insert_values"}
                doc = runner.child(row, table, profile=raw, **opts)
                (prof_dir / f"{row}.txt").write_text(report.summarize_profile(raw, doc))

    med = report.medians(runner.runs)
    rat = report.ratios(med)
    settings["load_after"] = load_average()
    doc = {
        "items": args.items,
        "rows": {
            name: {
                k: med[name][k]
                for k in ("items_per_s", "cpu_s", "peak_rss_mb", "wall_s", "items", "runs", "api_requests")
                if k in med[name]
            }
            for name in report.ORDER
            if name in med
        },
        "ratios": rat,
        "goals": report.goals(rat),
        "stand_in_cpu_s": report.stand_in_medians(runner.runs),
        "started_at": started.isoformat(timespec="seconds"),
        "elapsed_s": time.perf_counter() - t_start,
        "settings": settings,
        "environment": env_info,
        "runs": runner.runs,
    }
    report.write(args.out, doc, _notes(args.notes))
    print()
    print("\n".join(report.table_md(doc["rows"])))
    print()
    print("\n".join(report.goals_md(doc["goals"])))
    print(f"\nwrote {args.out}/latest.md, latest.json, latest.png in {doc['elapsed_s']:.0f}s")
    return 0
