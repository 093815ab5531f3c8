"""The archive's errors: one base class, a few specific kinds.

Each message is one sentence that says what happened and what to do; the command line prints
it on stderr and the web shows it on a page.
"""


class ArchiveError(Exception):
    """A failure of the work that the user can understand and act on."""


class NotFound(ArchiveError):
    """A session, recording, transcript, object or user that does not exist."""


class InvalidInput(ArchiveError):
    """Input that cannot be used as it is: a bad file, a bad query, a bad value.

    Where a caller must say it in its own words (the web, in Vietnamese), `reason` names the
    case (e.g. "note.start_outside") and `values` holds the numbers the message shows; the
    message itself stays the English sentence the command line prints."""

    def __init__(self, message: str = "", *, reason: str = "", values: dict | None = None):
        super().__init__(message)
        self.reason = reason
        self.values = dict(values or {})


class InvalidMedia(InvalidInput):
    """A file that is not usable audio or video; it goes to quarantine with this reason."""


class StorageError(ArchiveError):
    """The object store failed to read or write."""


class StorageUnavailable(StorageError):
    """The object store cannot be reached now; the work can be retried later."""


class IntegrityError(ArchiveError):
    """Stored bytes do not match the hash the catalog holds for them."""


class Conflict(ArchiveError):
    """A change based on a version that someone else has changed since."""


class PermissionDenied(ArchiveError):
    """The user's role does not allow this."""
