"""The report of the datasets benchmark: Markdown to paste into docs/benchmarks.md.

Ratios read "times better for Shipyard": seconds are DVC / Shipyard, throughput is
Shipyard / pandas, memory is pandas / Shipyard.
"""

from __future__ import annotations

from common import fmt

# (key, label, target ratio); the label's {files}/{changed}/{mib} are filled in.
VERSIONING = (
    ("files_first", "{files:,} files of ~1 MiB ({files_mib}), first version", 2.0),
    ("big_first", "one file of {big_mib} (100 row groups), first version", 2.0),
    ("files_again", "{changed} of {files:,} files changed, new version", 3.0),
    ("big_again", "one file of {big_mib}, first 1% ({changed_mib}) changed, new version", None),
)


def _ratio(better: float | None, worse: float | None) -> float | None:
    if better is None or worse is None or better <= 0 or worse <= 0:
        return None
    return worse / better


def _ratio_text(r: float | None) -> str:
    return "—" if r is None else f"{r:.1f}x" if r < 100 else f"{r:,.0f}x"


def _mib(mb: float | None) -> str:
    return "?" if mb is None else f"{mb:,.0f} MiB" if mb >= 10 else f"{mb:.1f} MiB"


def versioning_table(values: dict[str, float], tag: str, files: int, changed: int) -> str:
    """Steps a-d: both tools' seconds, the ratio, the target; what each stored."""
    v = {k.removeprefix(f"{tag}."): x for k, x in values.items() if k.startswith(f"{tag}.")}
    names = {
        "files": files,
        "changed": changed,
        "files_mib": _mib(v.get("files.data_mb")),
        "big_mib": _mib(v.get("big.data_mb")),
        "changed_mib": _mib(v.get("big.changed_mb")),
    }
    lines = [
        "| workload | DVC (s) | Shipyard (s) | ratio | target | met | stored: DVC / Shipyard |",
        "|---|---:|---:|---:|---:|:-:|---:|",
    ]
    for key, label, target in VERSIONING:
        dvc, ship = v.get(f"{key}.dvc"), v.get(f"{key}.shipyard")
        if dvc is None and ship is None:
            continue
        r = _ratio(ship, dvc)
        if target is not None:
            goal = f">= {target:g}x"
            met = "" if r is None else "yes" if r >= target else "**no**"
        else:
            # The issue: a changed big file costs no more than a first version.
            first = v.get("big_first.shipyard")
            goal = "<= first version"
            met = "" if first is None or ship is None else "yes" if ship <= first else "**no**"
        stored = " / ".join(_mib(v.get(f"{key}.{tool}_stored_mb")) for tool in ("dvc", "shipyard"))
        lines.append(
            f"| {label.format(**names)} | {fmt(dvc)} | {fmt(ship)} | {_ratio_text(r)}"
            f" | {goal} | {met} | {stored} |"
        )
    return "\n".join(lines)


def csv_table(values: dict[str, float]) -> str:
    """CSV -> Parquet: rows/s, wall time and peak RSS of pandas and of Shipyard."""
    p, s = "csv.pandas", "csv.shipyard"
    speed = _ratio(values[f"{p}_s"], values[f"{s}_s"])  # pandas time / Shipyard time
    speed = None if speed is None else 1 / speed
    memory = _ratio(values[f"{s}_rss_mb"], values[f"{p}_rss_mb"])
    met = "" if speed is None else "yes" if speed >= 1 else "**no**"
    return "\n".join(
        [
            "| CSV to Parquet | pandas `read_csv` + `to_parquet` | Shipyard ingest"
            " (profiled, validated) | ratio | target | met |",
            "|---|---:|---:|---:|---:|:-:|",
            f"| rows/s | {fmt(values[f'{p}_rows_per_s'])} | {fmt(values[f'{s}_rows_per_s'])}"
            f" | {_ratio_text(speed)} | >= 1x | {met} |",
            f"| wall time (s) | {fmt(values[f'{p}_s'])} | {fmt(values[f'{s}_s'])} | | | |",
            f"| peak RSS (MB) | {fmt(values[f'{p}_rss_mb'])} | {fmt(values[f'{s}_rss_mb'])}"
            f" | {_ratio_text(memory)} | bounded | |",
        ]
    )


def setup_lines(values: dict[str, float], meta: dict) -> list[str]:
    """How the figures were taken, in the words docs/benchmarks.md uses."""
    plan = meta["plan"]
    files, changed = plan["files"], len(plan["changed"])
    per_file = next((int(v) for k, v in values.items() if k.endswith("files.rows_per_file")), 0)
    cold = (
        "with `sync; echo 3 > /proc/sys/vm/drop_caches` before each timed command as well,"
        " which evicts the data and the tools' own code and libraries alike"
        if meta["cold_variant"]
        else "a cold variant was not run: /proc/sys/vm/drop_caches is not writable here"
    )
    lines = [
        f"- Data: {files:,} Parquet files of ~1 MiB ({per_file:,} rows each; 10 columns:"
        " `id` int64, 8 float64 random normals at full precision, so Parquet cannot"
        " compress them, and a string of 8 values), and the same rows as one file of 100"
        f" row groups. Changes: {changed} of the files rewritten in place with new values"
        " (same rows and ids); the one file rewritten in place with its first row group"
        " (the first 1% of the rows) new.",
        "- DVC: `git init` + `dvc init` in a fresh repository, then `dvc add data/`"
        " (twice) or `dvc add data/big.parquet` (twice); default cache type (reflink, else"
        " copy: a copy on ext4); analytics and update checks off, its state database in"
        " the temporary folder.",
        "- Shipyard: embedded (no server) except in the remote mode, a fresh"
        " `SHIPYARD_HOME` on the same disk:"
        " `shipyard data ingest bench data/ --message cold`, then `--message again`"
        " (and the same with `data/big.parquet`). Row counts (and file counts) of each"
        " new version read back with `shipyard data versions bench --json`:"
        f" {meta['shipyard_versions_checked']} checked.",
        "- Timing, per command: each command in a fresh process, wall time from start to"
        f" exit, after an untimed `sync`; cold: {cold}. Both tools use a private `HOME`,"
        ' so no earlier run\'s config or cache is reused. "stored": bytes each tool added'
        " to its store for that version.",
    ]
    if "command" in meta.get("modes", []):
        lines.append(
            "- Per command, default settings: each fresh home's first command, an untimed"
            " `shipyard data list` (DVC's repository gets `git init` + `dvc init`), runs in"
            " its own process"
            f" ({fmt(values.get('warm.files.shipyard_first_command_s'))} s, files, page cache"
            " warm) and then starts the home's command daemon in the background, waited for"
            " untimed (ready"
            f" {fmt(values.get('warm.files.shipyard_daemon_ready_s'))} s after the command"
            " began). Each timed `shipyard data ingest` is a process of its own that hands"
            " its work to the daemon over its Unix socket; after each, `shipyard daemon"
            " status` confirms the daemon served it. DVC has no daemon."
        )
    if "nodaemon" in meta.get("modes", []):
        lines.append(
            "- Per command, `SHIPYARD_DAEMON=off`: each `shipyard` command runs in its own"
            " process, importing its stack and opening the stores first."
        )
    if "inprocess" in meta.get("modes", []):
        lines.append(inprocess_line(values))
    if "remote" in meta.get("modes", []):
        lines.append(
            "- Timing, remote: per command, with both tools' data sent to S3, one moto"
            " server on loopback (in memory) for the run, a bucket per tool. DVC: `dvc"
            " remote add -d` an `s3://` prefix (dvc-s3 in its venv), then each step is"
            ' `sh -c "dvc add data/ && dvc push"`, timed as one. Shipyard: a `shipyard'
            " server` on loopback started untimed in each fresh home, its blobs under an"
            " `s3://` prefix; each step is `shipyard data ingest` with `SHIPYARD_URL` set"
            ' (the client keeps only its caches). "stored": bytes each tool added to its'
            " bucket for that version."
        )
    if "csv.rows" in values:
        lines.append(
            "- CSV: `id` int64, 10 float64 (6 decimals), 5 int64, 3 strings of 5, 12 and 20"
            " values, an ISO 8601 timestamp string; written just before (page cache warm)."
            ' pandas: `python -c "import pandas as pd; pd.read_csv(src).to_parquet(dst)"`'
            " (its defaults: C parser, pyarrow engine, snappy). Shipyard: `shipyard data"
            " create big --expectations suite.json` (untimed: not_null on `id` and `f0`,"
            " range on `f1`, allowed_values on `s0`, unique on `id`; every row passes), then"
            " `shipyard data ingest big data.csv`. Peak RSS: the largest resident set of"
            " the command's process (wait4's rusage, what `/usr/bin/time -v` reports)."
        )
    return lines


def inprocess_line(values: dict[str, float]) -> str:
    """How the in-process figures were taken, and what the drivers spent before them."""
    spent = []
    for tool, name in (("dvc", "DVC"), ("shipyard", "Shipyard")):
        key = f"inprocess.warm.files.{tool}"
        opened = [values.get(f"{key}_{part}_s") for part in ("import", "open")]
        if None not in opened:
            spent.append(
                f"{name} {fmt(sum(opened))} s to import and open, then"
                f" {fmt(values.get(f'{key}_warmup_s'))} s for the warm-up call"
            )
    return (
        "- Timing, in process: the same repositories, data, steps, `sync` (and eviction)"
        " and checks, but each tool driven through its Python API by one long-lived process"
        " per repository, as a notebook, pipeline or service would: in DVC's venv `repo ="
        ' dvc.repo.Repo(root)` once, then `repo.add("data/")` (or'
        ' `"data/big.parquet"`) per step; in ours `client = shipyard.Client()` once'
        " (embedded, the run's `SHIPYARD_HOME`) and `client.datasets.list()`, then"
        ' `client.datasets.ingest("bench", path, message=...)` per step. One `Repo` and'
        " one `Client` are kept for the whole sequence (DVC resets its in-memory index"
        " around every call anyway; both tools keep their file-hash caches on disk, as"
        " per command). Before the first step each process makes one untimed call of the"
        " same operation on a separate ~1 MiB file of other bytes (DVC: `repo.add"
        '("warmup")` in the repository; Shipyard: an ingest into dataset `bench-warmup`),'
        " so modules each call imports lazily are loaded, as in any warm process. Timed:"
        " the call alone (`time.perf_counter()` around it, in the process). Cold: the data"
        " are evicted, the running processes' own code stays mapped."
        + (f" Before the steps on the files, page cache warm: {'; '.join(spent)}." if spent else "")
    )


def render(values: dict[str, float], meta: dict) -> str:
    """The whole report: how and where it ran, then one table per part."""
    env, plan = meta["environment"], meta["plan"]
    startup = f"`shipyard --help` {fmt(values.get('startup.shipyard'))} s"
    if "startup.dvc" in values:
        startup += f", `dvc --version` {fmt(values['startup.dvc'])} s"
    out = [
        f"Command: `{meta['command']}` (scale {plan['scale']:g})",
        "",
        f"- Date: {meta['date']}. Total time {meta['total_seconds']} s; load average"
        f" {meta['load_average']}.",
        f"- Machine: {env['cores']} cores (`nproc`), {env['machine'].split(', ', 1)[1]},"
        f" kernel {env['kernel']}; temporary folders on {env['disk']}.",
        f"- Versions: Python {env['python']}, Shipyard {env['shipyard']}, DVC {env['dvc']}"
        f" (own venv), pyarrow {env['pyarrow']}, pandas {env['pandas']}, numpy {env['numpy']}.",
        f"- CLI start-up alone (warm, median of 5): {startup}.",
        *setup_lines(values, meta),
        "- Ratio: how many times better Shipyard is (seconds: DVC / Shipyard; rows/s:"
        " Shipyard / pandas; memory: pandas / Shipyard).",
        "",
    ]
    for tag, title in (
        ("warm", "per command, page cache warm (data just written)"),
        ("cold", "per command, page cache evicted before each command"),
        ("nodaemon.warm", "per command with `SHIPYARD_DAEMON=off`, page cache warm"),
        ("nodaemon.cold", "per command with `SHIPYARD_DAEMON=off`, page cache evicted"
         " before each command"),
        ("inprocess.warm", "in-process (API calls in a warm process), page cache warm"),
        ("inprocess.cold", "in-process (API calls in a warm process), page cache evicted"
         " before each call"),
        ("daemon.warm", "per command with `shipyard daemon` running, page cache warm"),
        ("daemon.cold", "per command with `shipyard daemon` running, page cache evicted"
         " before each command"),
        ("remote.warm", "to S3 through a server (DVC: `dvc add` + `dvc push`), page cache"
         " warm"),
        ("remote.cold", "to S3 through a server (DVC: `dvc add` + `dvc push`), page cache"
         " evicted before each command"),
    ):  # fmt: skip
        if any(k.startswith(f"{tag}.") for k in values):
            table = versioning_table(values, tag, plan["files"], len(plan["changed"]))
            out += [f"### Versioning, {title}", "", table, ""]
    if "csv.shipyard_s" in values:
        rows, mib = int(values["csv.rows"]), values["csv.mb"]
        out += [f"### CSV ingest: {rows:,} rows x 20 columns ({_mib(mib)})", ""]
        out += [csv_table(values), ""]
    return "\n".join(out)
