"""Medians, ratios and goals; ``latest.json``, ``latest.md`` and ``latest.png``."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

#: Row name → label, in the order the rows are shown.
LABELS = {
    "floor": "floor: fetch + orjson.loads of every page",
    "naive": "naive: boto3 resource scan → csv.DictWriter → COPY",
    "dlt": "dlt pipeline (best loader format)",
    "arm-etl": "arm-etl: segment flow (Prefect), end to end",
    "arm-etl-core": "arm-etl: same phases via SegmentRun, no Prefect",
    "phase-extract": "phase alone: extract (scan + raw decode)",
    "phase-transform": "phase alone: transform",
    "phase-upload": "phase alone: upload (gzip parts + S3 + manifest)",
    "phase-load": "phase alone: load (COPY + verify + swap)",
    "phases-sequence": "phases in sequence (no overlap)",
    "arm-etl-tenth": "arm-etl: segment flow at N/10 items (memory baseline)",
    "arm-etl-10x": "arm-etl: segment flow at 10·N items",
}
ORDER = tuple(LABELS)
#: name → (ratio key, comparison, target, wording)
GOALS = (
    ("vs_dlt", ">=", 6.0, "arm-etl items/s ≥ 6× dlt's"),
    ("vs_naive", ">=", 4.0, "arm-etl items/s ≥ 4× naive's"),
    ("cpu_vs_floor", "<=", 3.0, "arm-etl CPU s per item ≤ 3× the floor's"),
    ("wall_vs_slowest_phase", "<=", 1.25, "segment wall ≤ 1.25× its slowest phase alone"),
    ("overlap", "<=", 1.15, "segment wall ≤ 1.15× max(slowest phase alone, all CPU of the run / cores)"),
    ("rss_10x", "<=", 1.2, "peak RSS at 10× the items ≤ 1.2× (10·N vs N, or N vs N/10)"),
    ("peak_rss_mb", "<=", 400.0, "peak RSS of the segment run ≤ 400 MB at N"),
    ("api_requests", "<=", 100.0, "requests the segment run makes to the Prefect API ≤ 100 at N"),
    ("api_requests_10x", "<=", 1.2, "Prefect API requests at 10× the items ≤ 1.2× (10·N vs N, or N vs N/10)"),
)
PHASE_ROWS = ("phase-extract", "phase-transform", "phase-upload", "phase-load")


def medians(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per row: medians of items/s, CPU s and peak RSS (each on its own) over the repetitions."""
    by_row: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_row.setdefault(r["name"], []).append(r)
    out: dict[str, dict[str, Any]] = {}
    for name, rs in by_row.items():
        out[name] = {
            "items_per_s": statistics.median(r["items_per_s"] for r in rs),
            "cpu_s": statistics.median(r["cpu_s"] for r in rs),
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in rs),
            "wall_s": statistics.median(r["wall_s"] for r in rs),
            "items": rs[0]["items"],
            "runs": len(rs),
        }
        if all("api_requests" in r for r in rs):
            out[name]["api_requests"] = statistics.median(r["api_requests"] for r in rs)
        if all(r.get("stand_in_cpu_s") for r in rs):
            out[name]["stand_in_cpu_total_s"] = statistics.median(sum(r["stand_in_cpu_s"].values()) for r in rs)
    return out


def ratios(rows: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    def get(name: str, key: str) -> float | None:
        r = rows.get(name)
        return None if r is None or not r.get(key) else float(r[key])

    def div(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b

    arm_rate, arm_cpu, arm_items = get("arm-etl", "items_per_s"), get("arm-etl", "cpu_s"), get("arm-etl", "items")
    floor_cpu, floor_items = get("floor", "cpu_s"), get("floor", "items")
    phase_walls = [w for w in (get(p, "wall_s") for p in PHASE_ROWS) if w is not None]
    return {
        "vs_dlt": div(arm_rate, get("dlt", "items_per_s")),
        "vs_naive": div(arm_rate, get("naive", "items_per_s")),
        "cpu_vs_floor": div(div(arm_cpu, arm_items), div(floor_cpu, floor_items)),
        "wall_vs_slowest_phase": div(get("arm-etl", "wall_s"), max(phase_walls) if phase_walls else None),
        # wall over what no schedule can beat: the slowest phase alone, or all the CPU the run spent (the
        # flow and the stand-ins) spread over the cores
        "overlap": div(
            get("arm-etl", "wall_s"),
            max(
                max(phase_walls) if phase_walls else 0.0,
                ((arm_cpu or 0.0) + (get("arm-etl", "stand_in_cpu_total_s") or 0.0)) / (os.cpu_count() or 1),
            )
            or None,
        ),
        "rss_10x": (
            div(get("arm-etl-10x", "peak_rss_mb"), get("arm-etl", "peak_rss_mb"))
            if "arm-etl-10x" in rows
            else div(get("arm-etl", "peak_rss_mb"), get("arm-etl-tenth", "peak_rss_mb"))
        ),
        "peak_rss_mb": get("arm-etl", "peak_rss_mb"),
        "api_requests": get("arm-etl", "api_requests"),
        "api_requests_10x": (
            div(get("arm-etl-10x", "api_requests"), get("arm-etl", "api_requests"))
            if "arm-etl-10x" in rows
            else div(get("arm-etl", "api_requests"), get("arm-etl-tenth", "api_requests"))
        ),
    }


def stand_in_medians(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per row: median CPU seconds the stand-ins (PostgreSQL, moto, Prefect API, replay) spent during its runs."""
    by_row: dict[str, list[dict[str, float]]] = {}
    for r in runs:
        if r.get("stand_in_cpu_s"):
            by_row.setdefault(r["name"], []).append(r["stand_in_cpu_s"])
    return {name: {k: round(statistics.median(x[k] for x in xs), 2) for k in xs[0]} for name, xs in by_row.items()}


def summarize_profile(raw: Path, doc: dict[str, Any], top: int = 30) -> str:
    """py-spy ``--gil`` collapsed stacks → where the GIL was held: self and inclusive shares per function."""
    import collections
    import re

    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0

    def clean(frame: str) -> str:
        return re.sub(r":\d+\)$", ")", re.sub(r" \(.*?/(site-packages|lib/python3\.\d+)/", " (", frame))

    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        total += int(n)
        frames = [clean(f) for f in stack.split(";") if f]
        if frames:
            self_t[frames[-1]] += int(n)
        for f in set(frames):
            incl[f] += int(n)
    rows = doc.get("rows", {})
    head = [f"py-spy --gil samples at 50 Hz: {total} (≈ {total / 50:.1f} s holding the GIL)"]
    head += [f"{k}: {v['items']:,} items in {v['wall_s']:.2f}s, CPU {v['cpu_s']:.2f}s" for k, v in rows.items()]
    out = [*head, "", "self (GIL held in this function):"]
    out += [f"  {v / max(1, total) * 100:5.1f}%  {k}" for k, v in self_t.most_common(top)]
    out += ["", "inclusive:"]
    out += [f"  {v / max(1, total) * 100:5.1f}%  {k}" for k, v in incl.most_common(top + 20)]
    return "\n".join(out) + "\n"


def goals(rat: dict[str, float | None]) -> dict[str, dict[str, Any]]:
    out = {}
    for key, op, target, text in GOALS:
        v = rat.get(key)
        met = None if v is None else (v >= target if op == ">=" else v <= target)
        out[key] = {"value": v, "target": f"{op} {target:g}", "met": met, "goal": text}
    return out


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def environment(warehouse_url: str | None = None) -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    import os

    pg = "-"
    if warehouse_url:
        try:
            import psycopg2

            conn = psycopg2.connect(warehouse_url)
            with conn.cursor() as cur:
                cur.execute("SHOW server_version")
                pg = cur.fetchone()[0]
            conn.close()
        except Exception:
            pass
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False, timeout=10
        ).stdout.strip()
    except Exception:
        rev = ""
    return {
        "machine": {
            "cpu": cpu,
            "cores": os.cpu_count(),
            "memory_gib": mem_gib,
            "os": platform.platform(),
        },
        "versions": {
            "python": platform.python_version(),
            "arm-etl": f"{_version('arm-etl')} ({rev or 'no git'})",
            **{
                d: _version(d)
                for d in ("boto3", "botocore", "orjson", "prefect", "moto", "psycopg2-binary", "pgserver", "dlt")
            },
            "postgresql": pg,
        },
    }


def _fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def table_md(rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| row | items | items/s | wall s | CPU s | CPU µs/item | peak RSS MB | runs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ORDER:
        r = rows.get(name)
        if r is None:
            continue
        per_item = r["cpu_s"] / r["items"] * 1e6 if r["items"] else None
        lines.append(
            f"| {name} — {LABELS.get(name, '')} | {r['items']:,} | {r['items_per_s']:,.0f} | {_fmt(r['wall_s'])} | "
            f"{_fmt(r['cpu_s'])} | {_fmt(per_item, 1)} | {r['peak_rss_mb']:,.0f} | {r['runs']} |"
        )
    return lines


def goals_md(g: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| ratio | value | goal | met |", "|---|---:|---|---|"]
    for key, d in g.items():
        met = "n/a" if d["met"] is None else ("yes" if d["met"] else "**no**")
        lines.append(f"| `{key}` | {_fmt(d['value'])} | {d['goal']} | {met} |")
    return lines


def stand_in_md(cpu: dict[str, dict[str, float]]) -> list[str]:
    lines = ["| row | PostgreSQL | moto (S3) | Prefect API | replay |", "|---|---:|---:|---:|---:|"]
    for name in ORDER:
        c = cpu.get(name)
        if c and not name.startswith("phase-"):
            lines.append(
                f"| {name} | {c.get('postgres', 0):.1f} | {c.get('moto', 0):.1f} | {c.get('prefect', 0):.1f} | "
                f"{c.get('replay', 0):.1f} |"
            )
    return lines


def write(out: Path, doc: dict[str, Any], notes: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    md = render_md(doc, notes)
    (out / "latest.md").write_text(md)
    chart(doc, out / "latest.png")


def _halves_md(runs: list[dict[str, Any]]) -> str:
    """Peak RSS in the first vs the second half of each flow run: flat if memory is bounded by the window."""
    parts = [
        f"{r['name']} {r['rss_halves_mb'][0]:,.0f} → {r['rss_halves_mb'][1]:,.0f}"
        for r in runs
        if len(r.get("rss_halves_mb") or ()) == 2
    ]
    return (" Peak RSS (MB) in the first → second half of each flow run: " + "; ".join(parts) + ".") if parts else ""


def render_md(doc: dict[str, Any], notes: list[str]) -> str:
    env, s = doc["environment"], doc["settings"]
    m = env["machine"]
    lines = [
        f"# arm-etl benchmark — {doc['items']:,} items",
        "",
        f"Run {doc['started_at']} ({doc['elapsed_s']:.0f} s in all); medians of {s['repeat']} interleaved "
        "repetitions (each row its own process; CPU = that process's user+system seconds over the measured "
        "work, all threads; RSS = its peak).",
        "",
        *table_md(doc["rows"]),
        "",
        "## Goals (ratios from this run)",
        "",
        *goals_md(doc["goals"]),
        "",
        "## CPU the stand-ins spent per row (median seconds; not in the rows' CPU)",
        "",
        *stand_in_md(doc.get("stand_in_cpu_s") or {}),
        "",
        "## Setup",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']}; "
        f"load average before/after: {s.get('load_before', '-')} / {s.get('load_after', '-')}.",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()) + ".",
        f"- Data: `arm_etl.seed.generate_items({doc['items']}, seed={s['seed']})` rendered once as "
        f"{s['pages']} Scan pages of ≤ 1 MB ({s['page_mb']:.0f} MB of wire JSON, {s['bytes_per_item']:.0f} B/item), "
        "served by `bench.replay` on 127.0.0.1 (DynamoDB costs nothing; the client path is real).",
        f"- S3: moto server; warehouse: embedded PostgreSQL (pgserver); Prefect API: a local server started "
        f"once. arm-etl: `pages_per_chunk={s['pages_per_chunk']}`, `max_in_flight={s['max_in_flight']}`, "
        "one segment (`total=1`), data-schema determined beforehand over every item and cached in S3.",
        f"- naive and dlt rows: {s['baseline_items']:,} items (the first pages); "
        f"dlt loader formats tried: {s.get('dlt_probe') or '-'} → `{s.get('dlt_format')}`.",
        "- Memory row: "
        + (
            "the flow at 10·N items (the pages replayed 10 times, `bench.x10`), one run."
            if s.get("x10_mode") == "full"
            else "the flow at N/10 items (a prefix of the pages), one run, before the rounds (it is also the "
            "stand-ins' warm-up); `rss_10x` = peak RSS at N over N/10 (10·N did not fit the time budget; "
            "`--x10 full` runs it)."
        )
        + _halves_md(doc.get("runs") or []),
        "- Experiments (monkeypatches from `bench.patches`, not the product): "
        + (", ".join(f"`{p}`" for p in s.get("patches") or []) or "none")
        + ".",
        "",
    ]
    if notes:
        lines += ["## Notes", "", *notes, ""]
    return "\n".join(lines)


def chart(doc: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    names = [n for n in ORDER if n in doc["rows"]]
    rates = [doc["rows"][n]["items_per_s"] for n in names]
    colors = ["#2b7bba" if n.startswith(("arm-etl", "phase")) else "#999999" for n in names]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(names) + 1.5))
    ax.barh(names[::-1], rates[::-1], color=colors[::-1])
    for i, v in enumerate(rates[::-1]):
        ax.text(v, i, f" {v:,.0f}", va="center", fontsize=8)
    ax.set_xlabel("items/s (median)")
    ax.set_title(f"arm-etl benchmark, {doc['items']:,} items, {doc['environment']['machine']['cores']} cores")
    ax.set_xlim(0, max(rates) * 1.2 if rates else 1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
