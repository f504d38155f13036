"""User-facing errors: each message names the file or field at fault and the fix."""

from __future__ import annotations


class UserError(ValueError):
    """An error in what the user asked for or stored; shown as one line, without a traceback."""


class ConfigError(UserError):
    """A setting that cannot work here; the message says what to change."""


class ArchError(UserError):
    """An impossible or inconsistent architecture request; the message names the field and a fix."""


class DataError(UserError):
    """Missing or unreadable training text; the message says what to change."""


class RecordError(UserError):
    """A record file that is missing, unreadable or fails validation."""


class StateError(UserError):
    """Stored run state (checkpoint, fingerprint, lock, sweep state) that this run cannot use."""
