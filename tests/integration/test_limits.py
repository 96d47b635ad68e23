"""Limits the service enforces whatever the edge: on each store."""

from __future__ import annotations

import pytest

from application.service import Service
from domain.errors import InvalidInput
from infra.settings import Limits, Settings

SLOW = {"name": "slow", "agent": {"kind": "scripted", "step_latency_s": 60, "max_steps": 200}}


def test_a_lowered_limit_refuses_the_next_trigger(store_url: str) -> None:
    with_room = Service(Settings(database_url=store_url))
    try:
        product = with_room.catalog.bootstrap("t")
        assert product is not None
        task = with_room.catalog.create_task(product.product_id, {"name": "t", "prompt": "p"}).id
        env = with_room.catalog.create_environment(product.product_id, SLOW).id
        exp = with_room.experiments.create_experiment(
            product.product_id, "e", [task], [env], repeats=5
        )
    finally:
        with_room.close()
    strict = Service(Settings(database_url=store_url, limits=Limits(max_runs_per_iteration=4)))
    try:
        with pytest.raises(
            InvalidInput, match="5 runs per iteration, over the server's limit of 4"
        ):
            strict.experiments.trigger(product.product_id, exp.id)
        assert strict.views.experiment(product.product_id, exp.id).iterations == 0
    finally:
        strict.close()
