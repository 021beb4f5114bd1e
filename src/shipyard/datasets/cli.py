"""``shipyard data``: datasets, versions, expectations, diffs and lineage, on the SDK."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table
from rich.text import Text

from shipyard.cli.common import JsonOption, ProjectOption, command, get_client
from shipyard.cli.output import (
    console,
    err_console,
    format_time,
    print_error,
    print_json,
    print_record,
    print_table,
)
from shipyard.errors import InvalidInput, ValidationFailed

if TYPE_CHECKING:
    # The API shapes are pydantic models: imported by the commands that build or
    # validate one, so that listing the commands does not build them.
    from shipyard.datasets.types import (
        ColumnProfile,
        DatasetVersion,
        DatasetVersionDetail,
        ExpectationSuite,
        Profile,
        ValidationReport,
        VersionDiff,
    )

data_app = typer.Typer(
    help="Datasets: versioned, validated, profiled data and its lineage.", no_args_is_help=True
)

POLICIES = ("reject", "warn", "quarantine")
SPARKS = "▁▂▃▄▅▆▇█"
VersionOption = typer.Option("latest", "--version", "-v", help="Version number or tag.")
PolicyOption = typer.Option(None, "--policy", help="On failed expectations: " + "|".join(POLICIES))


# --- formatting ----------------------------------------------------------------------------


def human_bytes(n: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    if n < 1024:
        return f"{n} B"
    units = ("KiB", "MiB", "GiB", "TiB")
    size, index = n / 1024, 0
    while size >= 1024 and index < len(units) - 1:
        size, index = size / 1024, index + 1
    return f"{size:.1f} {units[index]}"


def sparkline(counts: list[int]) -> str:
    """Histogram counts as unicode bars (a blank for an empty bin)."""
    top = max(counts, default=0)
    if top <= 0:
        return ""
    return "".join(" " if c <= 0 else SPARKS[round(c / top * (len(SPARKS) - 1))] for c in counts)


def _cell(value: Any, width: int = 24) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, dict | list):
        import orjson

        text = orjson.dumps(value).decode()
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(title: str, headers: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, header_style="bold", title_justify="left")
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*[_cell(v, 200) for v in row])
    console.print(table)


# --- reading inputs ------------------------------------------------------------------------


def _policy(policy: str | None) -> str | None:
    if policy is not None and policy not in POLICIES:
        raise InvalidInput(f"unknown policy {policy!r}: use one of {', '.join(POLICIES)}")
    return policy


def read_suite(path: Path, policy: str | None, default_policy: str = "reject") -> ExpectationSuite:
    """An expectation suite from a JSON file: a list of expectations, or a suite object
    ``{"expectations": [...], "policy": ...}``; ``policy`` overrides the file's."""
    import orjson
    from pydantic import ValidationError

    from shipyard.datasets.types import ExpectationSuite

    _policy(policy)
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InvalidInput(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{str(path)!r} is not valid JSON: {exc}") from None
    if isinstance(data, list):
        data = {"expectations": data}
    if not isinstance(data, dict):
        raise InvalidInput(f"{str(path)!r}: expected a list of expectations or a suite object")
    data = {"policy": default_policy, **data}
    if policy is not None:
        data["policy"] = policy
    try:
        return ExpectationSuite.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3]
        )
        raise InvalidInput(f"{str(path)!r} holds no valid expectations: {problems}") from None


# --- showing versions and reports ----------------------------------------------------------


def _summary(version: DatasetVersion) -> None:
    report = version.validation
    status = "not checked" if report is None else "passed" if report.passed else "FAILED"
    if report is not None:
        status += f" (policy {report.policy})"
        if report.quarantined_rows:
            status += f", {report.quarantined_rows} row(s) quarantined"
    quarantine = " (quarantine)" if version.kind == "quarantine" else ""
    fields = [
        ("version", f"{version.dataset}@{version.version}{quarantine}"),
        ("tags", ", ".join(version.tags)),
        ("rows", f"{version.rows:,}"),
        ("files", str(version.file_count)),
        ("bytes", human_bytes(version.bytes)),
        ("digest", version.digest),
        ("validation", status),
        ("created", f"{format_time(version.created_at)} by {version.created_by}"),
        ("message", version.message),
        ("source", version.source),
    ]
    table = Table(show_header=False, title=f"Dataset {version.dataset}", title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in fields:
        if value:
            table.add_row(key, value)
    console.print(table)


def _failed_results(report: ValidationReport, *, to_stderr: bool = False) -> None:
    """The expectations that failed, with counts, then a few offending rows of each."""
    out = err_console if to_stderr else console
    failed = [r for r in report.results if not r.passed]
    table = Table(title="Failed expectations", header_style="bold", title_justify="left")
    for header in ("expectation", "kind", "failed rows", "message"):
        table.add_column(header, overflow="fold")
    for r in failed:
        table.add_row(r.name, r.kind, f"{r.failed_rows:,}", r.message)
    out.print(table)
    for r in failed:
        if not r.samples:
            continue
        columns = list(dict.fromkeys(k for s in r.samples for k in s))
        samples = Table(header_style="bold")
        for column in columns:
            samples.add_column(column, overflow="fold")
        for s in r.samples:
            samples.add_row(*["null" if s.get(c) is None else _cell(s[c]) for c in columns])
        out.print(Text.assemble("sample rows of ", (r.name, "bold"), ":"))
        out.print(samples)


def _report(report: ValidationReport) -> None:
    _table(
        f"Validation: {'passed' if report.passed else 'FAILED'} "
        f"({report.rows_checked:,} rows, policy {report.policy})",
        ["expectation", "kind", "passed", "failed rows", "message"],
        [
            [r.name, r.kind, "yes" if r.passed else "NO", f"{r.failed_rows:,}", r.message]
            for r in report.results
        ],
    )


def _schema(version: DatasetVersion) -> None:
    _table(
        "Schema",
        ["column", "type", "nullable"],
        [[c.name, c.type, "yes" if c.nullable else "no"] for c in version.columns],
    )


def _profile(profile: Profile) -> None:
    rows = []
    for c in profile.columns:
        histogram = sparkline(c.histogram.counts) if c.histogram else ""
        rows.append(
            [
                c.name,
                c.type,
                f"{c.null_fraction * 100:.1f}",
                ("~" if c.approximate else "") + ("" if c.distinct is None else f"{c.distinct:,}"),
                _cell(c.min),
                _cell((c.quantiles or {}).get("0.5")),
                _cell(c.max),
                c.mean,
                c.std,
                histogram,
                _top_values(c),
            ]
        )
    _table(
        f"Profile ({profile.rows:,} rows)",
        ["column", "type", "nulls %", "distinct", "min", "median", "max", "mean", "std"]
        + ["histogram", "most frequent"],
        rows,
    )


def _top_values(column: ColumnProfile, shown: int = 3) -> str:
    """The column's most frequent values with their counts (~ where estimated)."""
    mark = "~" if column.approximate else ""
    return ", ".join(
        f"{_cell(v.value)} ({mark}{round(v.count):,})" for v in column.top_values[:shown]
    )


def _diff(diff: VersionDiff) -> None:
    same = " (same data)" if diff.same_data else ""
    console.print(
        Text.assemble(
            (diff.dataset, "bold"),
            f" {diff.old} -> {diff.new}: rows {diff.rows[0]:,} -> {diff.rows[1]:,}{same}",
        )
    )
    if diff.schema_changes:
        _table(
            "Schema changes",
            ["column", "change", "old", "new"],
            [[s.column, s.change, s.old, s.new] for s in diff.schema_changes],
        )
    if diff.column_changes:

        def pair(p: tuple[Any, Any] | None) -> str:
            return "" if p is None else f"{_cell(p[0], 14)} -> {_cell(p[1], 14)}"

        _table(
            "Column changes",
            ["column", "null fraction", "distinct", "mean", "std", "min", "max", "psi"],
            [
                [c.column, pair(c.null_fraction), pair(c.distinct), pair(c.mean), pair(c.std)]
                + [pair(c.min), pair(c.max), c.psi]
                for c in diff.column_changes
            ],
        )
    rows = diff.rows_diff
    if rows is not None:
        console.print(
            f"by {', '.join(rows.keys)}: {rows.added:,} added, {rows.removed:,} removed, "
            f"{rows.changed:,} changed, {rows.unchanged:,} unchanged"
        )
        if rows.changed_columns:
            _table(
                "Changed values",
                ["column", "rows changed"],
                [[k, f"{v:,}"] for k, v in rows.changed_columns.items()],
            )


# --- commands ------------------------------------------------------------------------------


@data_app.command("create")
@command
def create(
    name: str,
    description: str = typer.Option("", "--description", "-d"),
    expectations: Path | None = typer.Option(
        None, "--expectations", "-e", help="JSON file: a list of expectations or a suite."
    ),
    policy: str | None = PolicyOption,
    project: str | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Create an empty dataset, with the expectations its versions must meet."""
    from shipyard.datasets.types import ExpectationSuite

    suite = read_suite(expectations, policy) if expectations else None
    if suite is None and _policy(policy):
        suite = ExpectationSuite(policy=policy)  # type: ignore[arg-type]
    client = get_client(project)
    dataset = client.datasets.create(
        name,
        description=description,
        expectations=suite,
        policy=suite.policy if suite else None,
    )
    if as_json:
        print_json(dataset)
        return
    console.print(
        f"created dataset {dataset.name} ({len(dataset.expectations.expectations)} "
        f"expectation(s), policy {dataset.expectations.policy})"
    )


@data_app.command("expect")
@command
def expect(
    name: str,
    file: Path | None = typer.Option(
        None,
        "--file",
        "-f",
        "--expectations",
        "-e",
        help="JSON file: a list of expectations or a suite.",
    ),
    policy: str | None = PolicyOption,
    project: str | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Replace a dataset's expectations (and/or change its policy)."""
    if file is None and policy is None:
        raise InvalidInput("give --file with the expectations, --policy, or both")
    client = get_client(project)
    current = client.datasets.get(name).expectations
    if file is not None:
        suite = read_suite(file, policy, default_policy=current.policy)
    else:
        suite = current.model_copy(update={"policy": _policy(policy)})
    dataset = client.datasets.update(name, expectations=suite, policy=suite.policy)
    if as_json:
        print_json(dataset)
        return
    console.print(
        f"{dataset.name}: {len(dataset.expectations.expectations)} expectation(s), "
        f"policy {dataset.expectations.policy}"
    )


@data_app.command("ingest")
@command
def ingest(
    name: str,
    source: str = typer.Argument(..., help="File, folder, s3:// or file:// URL, or SQL URL."),
    message: str = typer.Option("", "--message", "-m"),
    format: str | None = typer.Option(None, "--format", help="csv, parquet or jsonl."),
    query: str | None = typer.Option(None, "--query", help="SQL to run when SOURCE is a DB URL."),
    append: bool = typer.Option(False, "--append", help="Add to the latest version's files."),
    parent: list[str] = typer.Option([], "--parent", help="A version it derives from: name@v."),
    tag: list[str] = typer.Option([], "--tag", help="Tag the new version; repeatable."),
    project: str | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Make the next version of NAME from SOURCE: validated, profiled, stored by content."""
    from shipyard.datasets.types import ValidationReport

    client = get_client(project)
    try:
        version = client.datasets.ingest(
            name,
            source,
            message=message,
            format=format,
            query=query,
            append=append,
            parents=parent,
            tags=tag,
            progress=True if sys.stderr.isatty() else None,
        )
    except ValidationFailed as exc:
        print_error(exc.message, exc.code)
        report = exc.details.get("report") if isinstance(exc.details, dict) else None
        if report:
            _failed_results(ValidationReport.model_validate(report), to_stderr=True)
        raise typer.Exit(1) from None
    if as_json:
        print_json(version)
        return
    _summary(version)
    if version.version > 1:
        newest = client.datasets.versions(name, max_results=2).versions
        earlier = next((v for v in newest if v.version < version.version), None)
        if earlier is not None and earlier.digest == version.digest:
            console.print(
                f"the same data as version {earlier.version}: nothing changed", style="dim"
            )
    report = version.validation
    if report is not None and not report.passed:
        _failed_results(report)
    if report is not None and report.quarantined_rows:
        children = client.datasets.lineage(name, version.version).children
        for child in children:
            if child.relation == "quarantine":
                console.print(
                    f"{report.quarantined_rows:,} row(s) that failed went to "
                    f"{child.dataset}@{child.version} (kind quarantine)"
                )


def _all_versions(client: Any, name: str) -> list[DatasetVersion]:
    versions: list[DatasetVersion] = []
    token = None
    while True:
        page = client.datasets.versions(name, page_token=token, max_results=1000)
        versions += page.versions
        token = page.next_page_token
        if not token:
            return versions


@data_app.command("list")
@command
def list_datasets(
    query: str | None = typer.Option(None, "--query", "-q", help="Substring of the name."),
    project: str | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Datasets of the project, most recently changed first."""
    client = get_client(project)
    datasets = []
    token = None
    while True:
        page = client.datasets.list(query, page_token=token, max_results=1000)
        datasets += page.datasets
        token = page.next_page_token
        if not token:
            break
    if as_json:
        print_json({"datasets": datasets, "next_page_token": None})
        return
    rows = []
    for d in datasets:
        data = d.model_dump(mode="json")
        data["tags"] = ", ".join(f"{t}->{v}" for t, v in d.tags.items())
        data["expectations"] = f"{len(d.expectations.expectations)} ({d.expectations.policy})"
        rows.append(data)
    print_table(
        rows,
        ["name", "latest_version", "tags", "expectations", "updated_at", "description"],
        title="Datasets",
    )


@data_app.command("show")
@command
def show(
    name: str,
    version: str = VersionOption,
    project: str | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """A version: summary, schema, profile (with histograms) and validation report."""
    client = get_client(project)
    dataset = client.datasets.get(name)
    detail: DatasetVersionDetail | None = None
    if dataset.latest_version is not None or version != "latest":
        detail = client.datasets.get_version(name, version)
    if as_json:
        print_json({"dataset": dataset, "version": detail})
        return
    if detail is None:
        print_record(dataset, title=f"Dataset {name}")
        console.print("no versions yet", style="dim")
        return
    _summary(detail)
    _schema(detail)
    if detail.profile is not None:
        _profile(detail.profile)
    if detail.validation is not None:
        _report(detail.validation)


@data_app.command("versions")
@command
def versions(name: str, project: str | None = ProjectOption, as_json: bool = JsonOption) -> None:
    """The dataset's versions, newest first."""
    from shipyard.datasets.types import VersionPage

    found = _all_versions(get_client(project), name)
    if as_json:
        print_json(VersionPage(versions=found))
        return
    rows = []
    for v in found:
        data = v.model_dump(mode="json", include={"version", "kind", "rows", "file_count"})
        data["tags"] = ", ".join(v.tags)
        data["size"] = human_bytes(v.bytes)
        data["digest"] = v.digest[:12]
        data.update(created_at=v.created_at, created_by=v.created_by, message=v.message)
        rows.append(data)
    print_table(
        rows,
        ["version", "kind", "tags", "rows", ("file_count", "files"), "size", "digest"]
        + ["created_at", "created_by", "message"],
        title="Versions",
    )


@data_app.command("diff")
@command
def diff(
    name: str,
    old: str,
    new: str,
    key: list[str] = typer.Option([], "--key", "-k", help="Key column: compare rows by it."),
    project: str | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """What changed from version OLD to NEW (numbers or tags)."""
    result = get_client(project).datasets.diff(name, old, new, keys=key)
    if as_json:
        print_json(result)
        return
    _diff(result)


@data_app.command("validate")
@command
def validate(
    name: str,
    version: str = VersionOption,
    project: str | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Judge a stored version against the dataset's current expectations (exit 1 on failure)."""
    report = get_client(project).datasets.validate(name, version)
    if as_json:
        print_json(report)
    else:
        _report(report)
    if not report.passed:
        raise typer.Exit(1)


@data_app.command("download")
@command
def download(
    name: str,
    dest: Path,
    version: str = VersionOption,
    project: str | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Write a version's Parquet files under DEST (verified by hash)."""
    written = get_client(project).datasets.download(name, dest, version)
    if as_json:
        print_json([str(p) for p in written])
        return
    for path in written:
        console.print(str(path))
    console.print(f"{len(written)} file(s) written", style="dim")


@data_app.command("tag")
@command
def tag(
    name: str,
    tag: str,
    version: str,
    project: str | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Point TAG of dataset NAME at VERSION (moving it if it was set)."""
    result = get_client(project).datasets.set_tag(name, tag, version)
    if as_json:
        print_json(result)
        return
    console.print(f"{name}@{tag} -> version {result.version}")


@data_app.command("untag")
@command
def untag(name: str, tag: str, project: str | None = ProjectOption) -> None:
    """Remove TAG from dataset NAME."""
    get_client(project).datasets.delete_tag(name, tag)
    console.print(f"removed tag {tag} of {name}")


@data_app.command("lineage")
@command
def lineage(
    name: str,
    version: str = VersionOption,
    project: str | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """The versions a version was made from, those made from it, and the runs that read it."""
    result = get_client(project).datasets.lineage(name, version)
    if as_json:
        print_json(result)
        return
    v = result.version
    console.print(f"{v.project}/{v.dataset}@{v.version}", style="bold")
    for title, refs in (("Parents", result.parents), ("Children", result.children)):
        print_table(
            [
                r.model_dump()
                | {"ref": f"{r.project}/{r.dataset}@{r.version}" + (" (deleted)" * r.deleted)}
                for r in refs
            ],
            [("ref", "version"), "relation"],
            title=title,
        )
    print_table(result.runs, ["run_id", "name", "experiment_id", "context"], title="Runs")
    if result.runs_total > len(result.runs):
        console.print(f"The newest {len(result.runs)} of {result.runs_total} runs that read it.")


@data_app.command("inputs")
@command
def inputs(run_id: str, as_json: bool = JsonOption) -> None:
    """The dataset versions a run read (the other direction of ``lineage``)."""
    found = get_client(None).datasets.inputs_of(run_id)
    if as_json:
        print_json(found)
        return
    print_table(
        [
            i.model_dump()
            | {"ref": f"{i.project}/{i.dataset}@{i.version}" + (" (deleted)" if i.deleted else "")}
            for i in found
        ],
        [("ref", "version"), "context", "digest"],
        title=f"Inputs of run {run_id}",
    )
