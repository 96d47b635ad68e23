"""`tpc`: the agent prints (or writes) a tpc transcript v1 JSON document (SPEC §3).

A file may also hold an array of transcripts (the replay agent's files do).
"""

from __future__ import annotations

from domain.transcript_formats.parsing import (
    DocumentParser,
    Node,
    ParsedOutput,
    Sample,
    TranscriptFormatError,
    decode_json,
    decode_text,
)
from domain.transcripts import InvalidTranscript, transcript_from_object


class TpcParser(DocumentParser):
    """The document is taken as it is; only a missing prompt message is added."""

    name = "tpc"

    def parse(self, document: Node) -> ParsedOutput:
        document.obj()
        try:
            transcript = transcript_from_object(document.value, self.name)
        except InvalidTranscript as error:
            raise TranscriptFormatError(str(error), error.problems) from None
        return ParsedOutput(transcript)


def read_tpc_file(file_name: str, data: bytes) -> list[Sample]:
    """One transcript, or an array of them (each is a sample named by its index)."""
    document = decode_json(decode_text(data, "tpc"), "tpc")
    if not isinstance(document.value, list):
        return [Sample(None, _transcript(document, file_name), {})]
    if not document.value:
        document.fail("an empty array (expected tpc transcripts)")
    return [
        Sample(str(index), _transcript(item, f"{file_name}[{index}]"), {})
        for index, item in enumerate(document.items())
    ]


def _transcript(document: Node, name: str) -> ParsedOutput:
    document.obj()
    try:
        return ParsedOutput(transcript_from_object(document.value, name))
    except InvalidTranscript as error:
        raise TranscriptFormatError(str(error), error.problems) from None
