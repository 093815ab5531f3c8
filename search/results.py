"""What a search returns: `SearchResult` with its `Hit`s, both plain data for the web and the CLI."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Hit:
    """One passage (or a session's metadata) that matched.

    `start` is the second the first matched word was said (0 for a metadata match), `end` the end
    of the segment it is in; `snippet` is HTML-escaped text with the matched words or phrase in
    <mark>."""
    session_id: str
    title: str
    held_on: str
    recording_id: str
    start: float
    end: float
    speaker: str
    snippet: str
    score: float

    def to_dict(self) -> dict:
        data = asdict(self)
        data["session"] = self.session_id   # the key of the HTTP and CLI contract
        return data


@dataclass
class SearchResult:
    total: int
    page: int
    limit: int
    hits: list[Hit] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    sort: str = "relevance"

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit)) if self.limit else 1

    def to_dict(self) -> dict:
        return {"total": self.total, "page": self.page, "limit": self.limit, "pages": self.pages,
                "sort": self.sort, "messages": list(self.messages),
                "hits": [h.to_dict() for h in self.hits]}
