"""What agents produce is data, not a request: text no store can keep is cleaned (U+FFFD), in
one place per kind of record, and clean output is kept as it is, without a copy."""

from __future__ import annotations

from domain.clusters import RecordedCluster, RootCause, Suggestion
from domain.iterations import Iteration
from domain.runs import RecordedStats, Run
from domain.safe_text import clean_value
from domain.signals.extraction import Evidence, SignalValue
from domain.transcripts import storable_transcript, transcript_from_object


def test_clean_value_replaces_nul_and_lone_surrogates_everywhere_keys_included() -> None:
    dirty = {"a\x00": ["x\ud800", ("y", {"z": "\udfff\x00"})], "n": 1, "none": None}
    assert clean_value(dirty) == {
        "a\ufffd": ["x\ufffd", ("y", {"z": "\ufffd\ufffd"})],
        "n": 1,
        "none": None,
    }


def test_clean_value_returns_clean_values_themselves() -> None:
    value = {"text": "fine \u00e9 \U0001f600", "items": [1, 2.5, True, None]}
    assert clean_value(value) is value


def test_a_clean_transcript_is_stored_as_it_is() -> None:
    transcript = transcript_from_object({"messages": [{"role": "assistant", "content": "é 😀"}]})
    kept, document = storable_transcript(transcript)
    assert kept is transcript
    assert document == transcript.model_dump_json(exclude_none=True).encode()
    # A literal backslash before `u0000` is text like any other: kept unchanged.
    literal = transcript_from_object(
        {"messages": [{"role": "assistant", "content": "a literal \\u0000 is fine"}]}
    )
    kept, document = storable_transcript(literal)
    assert kept == literal
    assert document == literal.model_dump_json(exclude_none=True).encode()


def test_a_transcript_holding_nul_or_lone_surrogates_is_cleaned_not_refused() -> None:
    transcript = transcript_from_object(
        {
            "messages": [
                {"role": "assistant", "content": "a\x00b"},
                {"role": "tool", "content": [{"type": "tool_result", "content": "\ud83d!"}]},
            ],
            "final_answer": "x\x00",
        }
    )
    cleaned, document = storable_transcript(transcript)
    texts = [block.model_dump() for message in cleaned.messages for block in message.content]
    assert texts[0]["text"] == "a\ufffdb"
    assert texts[1]["content"] == "\ufffd!"
    assert cleaned.final_answer == "x\ufffd"
    assert b"\\u0000" not in document
    assert storable_transcript(cleaned)[0] is cleaned


def run() -> Run:
    run = Run(
        run_id="run_1", experiment_id="exp_1", number=1, task_id="t", environment_id="e", repeat=0
    )
    run.start()
    return run


def test_a_run_records_its_agents_messages_outcome_and_signals_cleaned() -> None:
    dirty = run()
    dirty.record_messages(0, [{"role": "assistant", "content": "a\x00"}])
    dirty.complete("errored", "error", RecordedStats(model="m\ud800"), None, "crashed: \x00")
    dirty.record_signals("h", {"s": SignalValue("v\x00", (Evidence(None, "\ud800"),))})
    messages, completed, signals = dirty.collect_events()[-3:]
    assert isinstance(messages, Run.MessagesRecorded)
    assert messages.messages == [{"role": "assistant", "content": "a\ufffd"}]
    assert isinstance(completed, Run.Completed)
    assert (completed.stats, completed.error) == (RecordedStats(model="m\ufffd"), "crashed: \ufffd")
    assert isinstance(signals, Run.SignalsExtracted)
    assert signals.values == {"s": SignalValue("v\ufffd", (Evidence(None, "\ufffd"),))}


def test_clusters_a_model_named_are_recorded_cleaned() -> None:
    iteration = Iteration(
        experiment_id="exp_1",
        product_id="prd_1",
        number=1,
        signal_config=None,
        tasks={},
        environments={},
        runs=[],
    )
    cluster = RecordedCluster(
        id="cl_1",
        category="c\x00",
        root_cause=RootCause("docs", "explained"),
        recommended_fix="fix \ud800",
        run_ids=("run_1",),
        size=1,
        evidence=(),
    )
    iteration.record_clusters([cluster], [Suggestion("fix \ud800", 1, ("cl_1",), "docs")])
    recorded = iteration.collect_events()[-1]
    assert isinstance(recorded, Iteration.ClustersRecorded)
    [cleaned] = recorded.clusters
    assert (cleaned.category, cleaned.recommended_fix) == ("c\ufffd", "fix \ufffd")
    assert [item.fix for item in recorded.suggestions] == ["fix \ufffd"]
