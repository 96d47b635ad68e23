"""Golden tests: the text each source reads from a hand-written transcript (docs/spec.md §3.1)."""

from __future__ import annotations

import pytest

from domain.sources import final_answer_part, message_text, source_parts, source_text
from domain.transcripts import Transcript, transcript_from_object

GOLDEN = {
    "assistantText": (
        "Let me check the docs.\n"
        'Now:\n```python\nimport acme\nacme.Customer.create(name="Ada")\n```\nRunning it.\n'
        "Created customer cus_1."
    ),
    "userText": "Install the SDK and create a customer.\nAny luck?",
    "thinkingText": "Plan:\n```sh\npip install acme\n```",
    "toolCalls": (
        'shell {"command":"pip install acme","timeout":30}\n'
        'write_file {"path":"a.py","text":"é"}\n'
        "shell {}"
    ),
    "toolResults": "Successfully installed acme-2.1\nwrote\na.py",
    "codeText": (
        "pip install acme\n"
        '{"command":"pip install acme","timeout":30}\n'
        'import acme\nacme.Customer.create(name="Ada")\n'
        '{"path":"a.py","text":"é"}\n'
        "{}"
    ),
    "finalAnswer": "Created customer cus_1.",
    "any": (
        "You are a developer.\n"
        "Install the SDK and create a customer.\n"
        "Plan:\n```sh\npip install acme\n```\n"
        "Let me check the docs.\n"
        'shell {"command":"pip install acme","timeout":30}\n'
        "Successfully installed acme-2.1\n"
        'Now:\n```python\nimport acme\nacme.Customer.create(name="Ada")\n```\nRunning it.\n'
        'write_file {"path":"a.py","text":"é"}\n'
        "wrote\na.py\n"
        "Any luck?\n"
        "Created customer cus_1.\n"
        "shell {}"
    ),
}


@pytest.mark.parametrize("source", sorted(GOLDEN))
def test_source_text_matches_golden(golden: Transcript, source: str) -> None:
    assert source_text(golden, source) == GOLDEN[source]


def test_parts_carry_the_index_of_their_message(golden: Transcript) -> None:
    assert [event for event, _ in source_parts(golden, "toolCalls")] == [2, 4, 8]
    assert [event for event, _ in source_parts(golden, "userText")] == [1, 6]
    assert [event for event, _ in source_parts(golden, "codeText")] == [2, 2, 4, 4, 8]


def test_final_answer_is_last_assistant_message_with_text(golden: Transcript) -> None:
    # Message 8 is an assistant message with only a tool call: it is skipped.
    assert final_answer_part(golden) == (7, "Created customer cus_1.")


def test_recorded_final_answer_wins_and_points_at_no_event(golden: Transcript) -> None:
    recorded = golden.model_copy(update={"final_answer": "All done."})
    assert final_answer_part(recorded) == (None, "All done.")


def test_no_assistant_text_gives_an_empty_final_answer() -> None:
    transcript = transcript_from_object({"messages": [{"role": "user", "content": "hi"}]})
    assert final_answer_part(transcript) == (None, "")


def test_message_text_renders_all_blocks_or_only_the_source(golden: Transcript) -> None:
    message = golden.messages[2]
    assert message_text(message) == (
        "Plan:\n```sh\npip install acme\n```\n"
        "Let me check the docs.\n"
        'shell {"command":"pip install acme","timeout":30}'
    )
    assert message_text(message, "assistantText") == "Let me check the docs."
    assert message_text(message, "codeText") == (
        'pip install acme\n{"command":"pip install acme","timeout":30}'
    )
    assert message_text(message, "userText") == ""


def test_fences_longer_than_three_backticks_and_unclosed_fences() -> None:
    text = "````md\n```inner```\n````\nthen ```\nnot closed"
    transcript = transcript_from_object({"messages": [{"role": "assistant", "content": text}]})
    assert source_text(transcript, "codeText") == "```inner```"
