"""The benchmarks in `benchmarks/` as modules, for the tests that run them (they are code too)."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from tests.conftest import ROOT


def benchmark(name: str) -> Any:
    """`benchmarks/<name>.py`, loaded as `benchmarks_<name>` and registered under that name:
    dataclasses look their module up in sys.modules."""
    module_name = f"benchmarks_{name}"
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
