"""Proof that the audit log is unbroken.

Each entry of the catalog's audit table carries the hash of the entry before it and its own hash
over that and its fields (`archive.catalog.audit_hash`). Changing an entry breaks its own hash;
deleting or reordering entries breaks the link of the entry after. `verify` walks the chain from
the first entry and reports the first link that does not hold.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

from .catalog import GENESIS_HASH, audit_hash

HASHED_FIELDS = ("at", "actor", "action", "session_id", "target", "detail")


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    broken_at: int | None = None   # the id of the first entry whose link does not hold
    reason: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def sentence(self) -> str:
        if self.ok:
            return f"The audit log is unbroken: {self.checked} entries verified."
        return f"The audit log is broken at entry {self.broken_at}: {self.reason}"


def verify_entries(entries: Iterable[dict]) -> ChainReport:
    """Walk entries in id order from the genesis hash; stop at the first broken link."""
    prev, checked = GENESIS_HASH, 0
    for entry in entries:
        if entry["prev_hash"] != prev:
            return ChainReport(False, checked, entry["id"],
                               "it does not follow the entry before it (an entry was removed, "
                               "inserted or reordered); restore the catalog from a backup to compare.")
        expected = audit_hash(prev, {k: entry[k] for k in HASHED_FIELDS})
        if entry["hash"] != expected:
            return ChainReport(False, checked, entry["id"],
                               "its content does not match its hash (the entry was changed after it "
                               "was written); restore the catalog from a backup to compare.")
        prev = entry["hash"]
        checked += 1
    return ChainReport(True, checked)


def verify(catalog) -> ChainReport:
    return verify_entries(catalog.audit_entries())
