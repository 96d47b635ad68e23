"""`tpc`: the agent prints (or writes) a tpc transcript v1 JSON document (docs/spec.md §3)."""

from __future__ import annotations

from domain.transcript_formats.parsing import (
    DocumentParser,
    Node,
    ParsedOutput,
    TranscriptFormatError,
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
