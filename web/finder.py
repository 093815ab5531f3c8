"""The web's side of searching: request parameters to a query of the search index, and hits
grouped by session for the results page. Pages and the JSON API share it."""
from __future__ import annotations

import datetime as dt
import math
import threading
from dataclasses import dataclass, field

from flask import current_app, url_for

from archive.errors import InvalidInput

from .auth import archive
from .markup import CATEGORIES

FILTERS = ("from", "to", "case", "category", "point", "complainant")
SORTS = {"relevance": "Phù hợp nhất", "date": "Mới nhất trước"}
_index_lock = threading.Lock()


def search_index():
    """One search index object per application, opened on first use."""
    index = current_app.extensions.get("tcd_index")
    if index is None:
        with _index_lock:
            index = current_app.extensions.get("tcd_index")
            if index is None:
                from search import open_index
                index = current_app.extensions["tcd_index"] = open_index(archive())
    return index


def reindex() -> None:
    """Bring the search index up to date at once after a change made on the web (a correction
    must be findable, text just sealed must not be). A failure is logged, not raised: the index
    is a cache, the catalog holds the truth, and the next sync catches up."""
    try:
        search_index().sync()
    except Exception:
        current_app.logger.error("search index not updated after a change", exc_info=True)


@dataclass
class Query:
    q: str = ""
    filters: dict = field(default_factory=dict)
    sort: str = "relevance"
    page: int = 1

    @property
    def empty(self) -> bool:
        return not self.q and not any(self.filters.values())

    def args(self, **changes) -> dict:
        """URL parameters of this query (for links to other pages of results)."""
        data = {"q": self.q, **{k: v for k, v in self.filters.items() if v}, "sort": self.sort,
                "page": self.page}
        data.update(changes)
        return {k: v for k, v in data.items() if v not in ("", None)}


def parse_query(args) -> Query:
    """A Query from request arguments; dates must be YYYY-MM-DD."""
    filters = {name: (args.get(name) or "").strip()[:200] for name in FILTERS}
    for name in ("from", "to"):
        if filters[name]:
            try:
                dt.date.fromisoformat(filters[name])
            except ValueError:
                raise InvalidInput(f"Ngày '{filters[name]}' không hợp lệ; hãy nhập theo dạng YYYY-MM-DD.") from None
    sort = args.get("sort", "relevance")
    try:
        page = max(1, min(1000, int(args.get("page", 1))))
    except ValueError:
        page = 1
    return Query(q=(args.get("q") or "").strip()[:500], filters=filters,
                 sort=sort if sort in SORTS else "relevance", page=page)


def run(query: Query, limit: int):
    f = query.filters
    return search_index().search(query.q, date_from=f["from"] or None, date_to=f["to"] or None,
                                 case=f["case"] or None, category=f["category"] or None,
                                 point=f["point"] or None, complainant=f["complainant"] or None,
                                 sort=query.sort, page=query.page, limit=limit)


def hit_url(hit) -> str:
    """The session page at the hit's moment (to a tenth of a second, never after the words start),
    in the hit's recording."""
    if not hit.recording_id:  # the session's metadata matched, not something said
        return url_for("pages.session_page", session_id=hit.session_id)
    t = math.floor(float(hit.start or 0) * 10) / 10
    return url_for("pages.session_page", session_id=hit.session_id, t=f"{t:g}",
                   _anchor=f"rec-{hit.recording_id}" if hit.recording_id else None)


def group_by_session(hits) -> list[dict]:
    """Hits grouped by session, sessions in the order of their best hit."""
    groups: dict[str, dict] = {}
    for hit in hits:
        group = groups.get(hit.session_id)
        if group is None:
            group = groups[hit.session_id] = {"session_id": hit.session_id, "title": hit.title,
                                              "held_on": hit.held_on, "hits": []}
        group["hits"].append(hit)
    return list(groups.values())
