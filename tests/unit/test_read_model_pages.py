"""The pages the API answers keep their parametrized models alive: pydantic drops one nothing
refers to, and a list answered after a garbage collection then built its class again."""

from __future__ import annotations

import gc
import weakref

from projections import read_models
from projections.read_models import (
    AuditEvent,
    EnvironmentView,
    ExperimentView,
    IterationStatus,
    Page,
    RunRow,
    TaskView,
)


def test_each_page_class_outlives_a_garbage_collection() -> None:
    items = (TaskView, EnvironmentView, ExperimentView, AuditEvent, IterationStatus, RunRow)
    pages = [weakref.ref(Page[item]) for item in items]
    gc.collect()
    assert all(page() is not None for page in pages)
    assert set(read_models.PAGES) == {page() for page in pages}
