"""Full-text search of what was said in the sessions, in Vietnamese, with Whoosh underneath.

    from search import open_index
    index = open_index(archive)        # builds or repairs the index in settings.index_dir
    index.sync()                       # re-index what changed in the catalog
    result = index.search("đất đai", date_from="2025-01-01", sort="date")

Modules: analysis (NFC, folding, tone placement), numbers (numbers said aloud), query (the query
language), passages (what a document is), postings and matching (bounded query work), snippets
(start second and highlighted text), index (the Whoosh index, writers, rebuild), cli (`tcd
search`, `tcd reindex`).
"""
from .index import IndexBusy, SearchIndex, open_index
from .results import Hit, SearchResult

__all__ = ["open_index", "SearchIndex", "SearchResult", "Hit", "IndexBusy"]
