"""Runs-table page at 10,000 runs: Shipyard's server-rendered page vs MLflow's UI search call.

    .venv/bin/python benchmarks/ui_runs_table.py                 # both tools, SQLite
    .venv/bin/python benchmarks/ui_runs_table.py --only shipyard
    .venv/bin/python benchmarks/ui_runs_table.py --runs 2000 --repeats 5

One experiment of N runs (3 params, 3 metrics each: the first three of
``common.run_values``), on a fresh ``shipyard server`` over SQLite, filled through
the SDK's bulk run creation. Then, over HTTP with httpx, the median time of:

- ``first``: the first page (50 rows; 3 metric and 3 param columns);
- ``deep``: the page 100 pages in (rows 5,001-5,050);
- ``sorted``: the first page ordered by a metric (``metrics.m1 DESC``);
- ``filtered``: the first page of ``common.FILTER``.

For Shipyard, both the HTML page (``GET /experiments/{id}``) and the JSON search
behind it (``POST /api/v1/projects/default/runs/search``), so the cost of rendering
shows. For MLflow, the call its own UI makes for the same view:
``POST /ajax-api/2.0/mlflow/runs/search`` on ``mlflow server`` (the MLflow in
this venv), with its experiment filled through its own store API beforehand
(not timed). MLflow then still renders the rows in the browser; Shipyard's page
is done when the HTML arrives. Ratios are MLflow / Shipyard: above 1 is faster
for Shipyard.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import FILTER, ORDER_BY, check, free_port, log, median_time, run_values  # noqa: E402

from tracking import QUIET_ENV, SHIPYARD_VENV, base_env, server  # noqa: E402

PAGE = 50
DEEP_PAGES = 100
COLUMNS = "metrics.m0,metrics.m1,metrics.m2,params.p0,params.p1,params.p2"
BASE_TIME = 1_700_000_000_000
CASES = ("first", "deep", "sorted", "filtered")


def _values(i: int) -> tuple[dict[str, str], dict[str, float]]:
    params, metrics = run_values(i)
    return {k: params[k] for k in ("p0", "p1", "p2")}, {k: metrics[k] for k in ("m0", "m1", "m2")}


def _name(i: int) -> str:
    return f"r{i:05d}"


# --- Shipyard --------------------------------------------------------------------------


def _fill_shipyard(url: str, n: int, home: Path) -> int:
    from shipyard.client import Client
    from shipyard.config import Settings

    with Client(url, settings=Settings(home=home)) as client:
        runs = []
        for i in range(n):
            params, metrics = _values(i)
            start = BASE_TIME + i * 1000
            runs.append(
                {
                    "name": _name(i),
                    "params": params,
                    "metrics": [(k, v, 0, start) for k, v in metrics.items()],
                    "status": "finished",
                    "start_time": start,
                    "end_time": start + 60_000,
                }
            )
        began = time.perf_counter()
        client.runs.create_many("ui-bench", runs)
        log(f"  created {n:,} runs in {time.perf_counter() - began:.1f} s (bulk API)")
        return client.experiments.get_by_name("ui-bench").id


def _shipyard_queries(experiment_id: int) -> dict[str, dict[str, Any]]:
    from shipyard.paging import encode_page_token

    deep = encode_page_token(PAGE * DEEP_PAGES)
    return {
        "first": {},
        "deep": {"page": deep, "page_token": deep},
        "sorted": {"order": ORDER_BY[0]},
        "filtered": {"filter": FILTER},
    }


def _rows_in(html: str) -> list[str]:
    # Each row's name link follows its checkbox: pick the run names out of the links.
    marker = '<td class="name"><a href="/runs/'
    names = []
    for part in html.split(marker)[1:]:
        names.append(part.split(">", 1)[1].split("<", 1)[0])
    return names


def bench_shipyard(n: int, repeats: int, tmp: Path) -> tuple[dict[str, float], dict[str, list]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = base_env() | {"SHIPYARD_HOME": str(tmp / "shipyard-home")}
    cmd = [str(SHIPYARD_VENV / "bin" / "shipyard"), "server", "--host", "127.0.0.1"]
    cmd += ["--port", str(port)]
    log(f"[shipyard] server on {url} (SQLite)")
    timings: dict[str, float] = {}
    firsts: dict[str, list] = {}
    with server(cmd, env, f"{url}/healthz", tmp / "shipyard-server.log"):
        experiment_id = _fill_shipyard(url, n, tmp / "shipyard-client")
        with httpx.Client(base_url=url, timeout=120) as http:
            for case, query in _shipyard_queries(experiment_id).items():
                params = {"cols": COLUMNS, "size": PAGE}
                params.update({k: v for k, v in query.items() if k != "page_token"})

                def page(params: dict[str, Any] = params) -> httpx.Response:
                    r = http.get(f"/experiments/{experiment_id}", params=params)
                    r.raise_for_status()
                    return r

                seconds, reply = median_time(page, repeats, warmup=2)
                names = _rows_in(reply.text)
                check(len(names) == PAGE, f"shipyard {case}: {len(names)} rows on the page")
                timings[f"page.{case}"] = seconds
                firsts[case] = names

                body: dict[str, Any] = {"experiment_ids": [experiment_id], "max_results": PAGE}
                if "order" in query:
                    body["order_by"] = [query["order"]]
                if "filter" in query:
                    body["filter"] = query["filter"]
                if "page_token" in query:
                    body["page_token"] = query["page_token"]

                def api(body: dict[str, Any] = body) -> httpx.Response:
                    r = http.post("/api/v1/projects/default/runs/search", json=body)
                    r.raise_for_status()
                    return r

                seconds, reply = median_time(api, repeats, warmup=2)
                api_names = [r["name"] for r in reply.json()["runs"]]
                check(api_names == names, f"shipyard {case}: the page and the API disagree")
                timings[f"api.{case}"] = seconds
                log(f"  {case}: page {timings[f'page.{case}'] * 1000:.1f} ms, "
                    f"API {seconds * 1000:.1f} ms")  # fmt: skip
    return timings, firsts


# --- MLflow ----------------------------------------------------------------------------


def _fill_mlflow(db: Path, artifacts: Path, n: int) -> str:
    """Fill MLflow's SQLite store through its own store API (not timed: no bulk API)."""
    from mlflow.entities import Metric, Param, RunStatus
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(f"sqlite:///{db}", str(artifacts))
    experiment_id = store.create_experiment("ui-bench")
    began = time.perf_counter()
    for i in range(n):
        params, metrics = _values(i)
        start = BASE_TIME + i * 1000
        run = store.create_run(experiment_id, "bench", start, [], _name(i))
        store.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, start, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[],
        )
        store.update_run_info(run.info.run_id, RunStatus.FINISHED, start + 60_000, _name(i))
        if (i + 1) % 2000 == 0:
            log(f"  mlflow: {i + 1:,} runs ({time.perf_counter() - began:.0f} s)")
    store.engine.dispose()
    return experiment_id


def _text(token: str | bytes) -> str:
    return token.decode() if isinstance(token, bytes) else token


def _filled_mlflow(db: Path, artifacts: Path, n: int) -> str:
    """The experiment of an MLflow store filled before (``--mlflow-db``), or a new fill."""
    if db.exists():
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = SqlAlchemyStore(f"sqlite:///{db}", str(artifacts))
        experiment = store.get_experiment_by_name("ui-bench")
        check(experiment is not None, f"{db} holds no ui-bench experiment")
        store.engine.dispose()
        log(f"[mlflow] reusing {db}")
        return experiment.experiment_id
    log(f"[mlflow] filling {n:,} runs through SqlAlchemyStore (a few minutes)")
    return _fill_mlflow(db, artifacts, n)


def bench_mlflow(
    n: int, repeats: int, tmp: Path, db: Path | None
) -> tuple[dict[str, float], dict[str, list]]:
    from mlflow.utils.search_utils import SearchUtils

    db, artifacts = db or tmp / "mlflow.db", tmp / "mlartifacts"
    experiment_id = _filled_mlflow(db, artifacts, n)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [str(SHIPYARD_VENV / "bin" / "mlflow"), "server",
           "--backend-store-uri", f"sqlite:///{db}",
           "--artifacts-destination", str(artifacts),
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    log(f"[mlflow] server on {url}")
    queries = {
        "first": {},
        "deep": {"page_token": _text(SearchUtils.create_page_token(PAGE * DEEP_PAGES))},
        "sorted": {"order_by": ORDER_BY},
        "filtered": {"filter": FILTER},
    }
    timings: dict[str, float] = {}
    firsts: dict[str, list] = {}
    with server(cmd, base_env() | QUIET_ENV, f"{url}/health", tmp / "mlflow-server.log"):
        with httpx.Client(base_url=url, timeout=120) as http:
            for case, query in queries.items():
                # What MLflow's runs table sends (its default sort is start time, newest first).
                body = {
                    "experiment_ids": [experiment_id],
                    "run_view_type": "ACTIVE_ONLY",
                    "max_results": PAGE,
                    "order_by": ["attributes.start_time DESC"],
                    "filter": "",
                }
                body.update(query)

                def search(body: dict[str, Any] = body) -> httpx.Response:
                    r = http.post("/ajax-api/2.0/mlflow/runs/search", json=body)
                    r.raise_for_status()
                    return r

                seconds, reply = median_time(search, repeats, warmup=2)
                runs = reply.json().get("runs", [])
                check(len(runs) == PAGE, f"mlflow {case}: {len(runs)} rows")
                firsts[case] = [r["info"]["run_name"] for r in runs]
                timings[f"search.{case}"] = seconds
                log(f"  {case}: {seconds * 1000:.1f} ms")
    return timings, firsts


# --- Report ----------------------------------------------------------------------------


def report(n: int, shipyard: dict[str, float], mlflow: dict[str, float] | None) -> str:
    lines = [
        f"Runs table, {n:,} runs, {PAGE} rows a page, SQLite, median ms",
        "",
        "| view | Shipyard page (HTML) | Shipyard API (JSON) | MLflow ajax search (JSON) "
        "| MLflow / Shipyard page |",
        "|---|---:|---:|---:|---:|",
    ]
    for case in CASES:
        page, api = shipyard[f"page.{case}"] * 1000, shipyard[f"api.{case}"] * 1000
        ml = mlflow[f"search.{case}"] * 1000 if mlflow else None
        ratio = f"{ml / page:.1f}x" if ml else ""
        ml_text = f"{ml:.1f}" if ml else ""
        lines.append(f"| {case} | {page:.1f} | {api:.1f} | {ml_text} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--only", choices=("shipyard", "mlflow"))
    parser.add_argument(
        "--mlflow-db",
        type=Path,
        help="keep MLflow's filled SQLite store here (reused when it exists: filling "
        "10k runs takes MLflow minutes)",
    )
    args = parser.parse_args()
    check(args.runs >= PAGE * (DEEP_PAGES + 1), f"--runs must be at least {PAGE * 101}")
    with tempfile.TemporaryDirectory(prefix="ui-bench-") as name:
        tmp = Path(name)
        shipyard = mlflow = None
        ship_pages = ml_pages = None
        if args.only != "mlflow":
            shipyard, ship_pages = bench_shipyard(args.runs, args.repeats, tmp)
        if args.only != "shipyard":
            mlflow, ml_pages = bench_mlflow(args.runs, args.repeats, tmp, args.mlflow_db)
        if ship_pages and ml_pages:
            for case in CASES:
                same = ship_pages[case] == ml_pages[case]
                log(f"  {case}: same runs on both pages: {same}")
    if shipyard:
        print(report(args.runs, shipyard, mlflow))
    elif mlflow:
        print({k: round(v * 1000, 1) for k, v in mlflow.items()})


if __name__ == "__main__":
    main()
