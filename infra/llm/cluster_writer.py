"""LLM-written failure clusters (docs/spec.md §7): with a cluster model configured, a model names
the deterministic clusters, explains their root causes and writes their fixes (the question and the
rules for its answer are in `domain/clustering/written.py`).

The model is optional: without `TPC_CLUSTER_MODEL`, or without its provider's key, or when
the model fails, answers unusably, or answers with clusters worse than the rules' (fewer failing
runs in exactly one cluster, or a name given twice), the deterministic clusters stand and the
reason is kept with them. The answer is recorded with the iteration, so a replay never asks again.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from domain.clustering.written import (
    ANSWER_SCHEMA,
    answer_coverage,
    apply_written_clusters,
    cluster_question,
    repeated_names,
)
from domain.clusters import RecordedCluster
from domain.errors import InvalidInput
from domain.signals.config import JUDGE_MODELS
from infra.llm.chat import ChatMessage, ChatRequest, Meter, ProviderError
from infra.llm.prices import MODEL_PRICES
from infra.llm.providers import Providers, ProviderSettings, shared_providers
from infra.runners.toolbox import ToolSpec

log = logging.getLogger("tpc.cluster_writer")

MODEL_VARIABLE = "TPC_CLUSTER_MODEL"
ANSWER_TOOL = "record_clusters"
SYSTEM = "You are a developer-experience analyst. Be specific and cite the evidence."


@dataclass(frozen=True, slots=True)
class WrittenClusters:
    """The clusters to record, and how they were written (for the results' readers)."""

    clusters: list[RecordedCluster]
    written_by: str  # "rules" or the model id
    note: str | None = None  # why the rules' clusters stand, when a model was configured
    cost: float = 0.0


def configured_model(environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    return env.get(MODEL_VARIABLE, "").strip() or None


class ClusterWriter:
    """Asks the configured model to write the clusters; never raises for a model's failure."""

    def __init__(
        self,
        model: str | None,
        settings: ProviderSettings | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.model = model
        self._settings = settings
        self._environ = environ

    def write_blocking(self, clusters: Sequence[RecordedCluster]) -> WrittenClusters:
        """For the synchronous service (called in a worker thread): a private event loop, and
        provider clients made for it and closed with it (SDK clients are bound to a loop)."""

        async def once() -> WrittenClusters:
            providers = Providers(self._settings, self._environ)
            try:
                return await self.write(clusters, providers)
            finally:
                await providers.aclose()

        return asyncio.run(once())

    async def write(
        self, clusters: Sequence[RecordedCluster], providers: Providers | None = None
    ) -> WrittenClusters:
        """The clusters to record: the model's when it answered usably, else the rules'."""
        rules = WrittenClusters(list(clusters), "rules")
        if self.model is None or not clusters:
            return rules
        if self.model not in JUDGE_MODELS:
            note = (
                f"unsupported cluster model {self.model!r} (supported: {', '.join(JUDGE_MODELS)})"
            )
            return WrittenClusters(list(clusters), "rules", note)
        meter = Meter(MODEL_PRICES)
        # The question and the answer's rules (pure) read and write the clusters' JSON.
        recorded = [cluster.to_json() for cluster in clusters]
        try:
            client = (providers or shared_providers()).for_model(self.model)
            response = await client.chat(
                ChatRequest(
                    model=self.model,
                    system=SYSTEM,
                    messages=[ChatMessage.user(cluster_question(recorded))],
                    tools=[ToolSpec(ANSWER_TOOL, "Record the clusters.", ANSWER_SCHEMA)],
                    force_tool=ANSWER_TOOL,
                    max_tokens=8192,
                )
            )
            meter.add(self.model, response.usage)
            answer = next(
                (call.input for call in response.tool_calls if call.name == ANSWER_TOOL), None
            )
            covered, failing = answer_coverage(recorded, answer)
            rewritten = apply_written_clusters(recorded, answer)
            written = [RecordedCluster.from_json(cluster) for cluster in rewritten]
        except (ProviderError, ValueError) as error:
            log.warning("the cluster model failed; the rules' clusters stand: %s", error)
            return WrittenClusters(list(clusters), "rules", f"{self.model} failed: {error}")
        except InvalidInput as error:
            note = f"{self.model} gave an unusable answer ({error})"
            return WrittenClusters(list(clusters), "rules", note, meter.cost)
        # The rules put every failing run in exactly one cluster, under a name of its own.
        worse = None
        if covered < failing:
            worse = (
                f"its clusters put {covered} of the {failing} failing runs in exactly one "
                "cluster; the rules' put all of them"
            )
        elif repeated := repeated_names(rewritten):
            worse = f"it gave one name to several clusters: {', '.join(repeated)}"
        if worse is not None:
            log.warning("the cluster model's answer is worse than the rules': %s", worse)
            note = f"{self.model}'s clusters were worse than the rules' ({worse})"
            return WrittenClusters(list(clusters), "rules", note, meter.cost)
        named = [
            replace(cluster, written_by=self.model) if cluster.written_by else cluster
            for cluster in written
        ]
        return WrittenClusters(named, self.model, None, meter.cost)
