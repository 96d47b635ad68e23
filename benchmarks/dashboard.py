"""Dashboard page server time on an iteration of 10,000 runs, against /healthz in the same run.

    .venv/bin/python benchmarks/dashboard.py              # 10,000 runs (about a minute to build)
    .venv/bin/python benchmarks/dashboard.py --quick      # a smoke run

The store is built with the store benchmark's log builder (real events through the real
aggregates), then the real app is served in-process (Starlette's TestClient, so no network
time is counted) and every page is requested signed in. The figure is the median time per
request; the ratio is that over the median of /healthz, the cheapest request the app answers.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

with warnings.catch_warnings():  # Starlette now prefers httpx2 for its test client
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from api.http.app import create_app  # noqa: E402
from infra.settings import Settings  # noqa: E402

TOKEN = "benchmark-token"  # the store benchmark's log builder creates the product with it


def _store_benchmark() -> Any:
    spec = importlib.util.spec_from_file_location("store_benchmark", ROOT / "benchmarks/store.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["store_benchmark"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def _median_ms(client: TestClient, path: str, requests: int) -> float:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, f"{path}: {response.status_code}"
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 runs per iteration")
    parser.add_argument("--requests", type=int, default=20, help="requests per page")
    args = parser.parse_args(argv)
    tasks, repeats = (10, 10) if args.quick else (100, 50)
    runs = tasks * 2 * repeats
    store = _store_benchmark()
    with tempfile.TemporaryDirectory(prefix="tpc-dashboard-") as folder:
        path = Path(folder) / "tpc.db"
        started = time.perf_counter()
        # One iteration's worth of events: Opened, Started, Completed, SignalsExtracted a run.
        store.build_log(path, runs * 4, tasks, repeats, 200, store.signal_config_text())
        built = time.perf_counter() - started
        settings = Settings(database_url=f"sqlite:///{path}", api_token=TOKEN, run_workers=False)
        with TestClient(create_app(settings)) as client:
            service = client.app.state.service  # type: ignore[attr-defined]
            product = service.catalog.product_for_token(TOKEN)
            experiment = service.views.experiments(product).items[0].id
            status = service.views.iteration_status(product, experiment, "latest")
            assert status.runs.total == runs, status
            run = service.views.runs(product, experiment, "latest", limit=1).items[0].id
            signed = client.post(
                "/login", data={"token": TOKEN}, headers={"Origin": "http://testserver"}
            )
            assert signed.status_code in (200, 303) and client.cookies.get("tpc_session")
            pages = {
                "experiments": "/",
                "experiment": f"/experiments/{experiment}",
                "iteration results": f"/experiments/{experiment}/iterations/latest",
                "run": f"/runs/{run}",
                "history": f"/experiments/{experiment}/history",
            }
            baseline = _median_ms(client, "/healthz", args.requests)
            figures = {
                name: _median_ms(client, page, args.requests) for name, page in pages.items()
            }
    print(
        f"store: one iteration of {runs} runs ({tasks} tasks × 2 environments × {repeats} "
        f"repeats), built in {built:.1f} s; {args.requests} requests per page"
    )
    print(f"  {'/healthz (baseline)':22s} {baseline:7.2f} ms")
    for name, ms in figures.items():
        print(
            f"  {name:22s} {ms:7.2f} ms   ×{ms / baseline:6.1f} of baseline"
            f"   {'ok' if ms < 300 else 'OVER'} (target < 300 ms)"
        )
    return {"baseline": baseline, **figures}


if __name__ == "__main__":
    main()
