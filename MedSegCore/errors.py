"""Errors raised by MedSeg with a one-line, user-facing message."""


class MedSegError(Exception):
    """A problem the user can fix (bad file, bad parameter); its message is shown as is."""


class InputError(MedSegError):
    """An input file or volume cannot be used (missing, unreadable, wrong kind of data)."""


class OutputError(MedSegError):
    """An output cannot be written (disk full, read-only folder, it would overwrite an input)."""


class ParameterError(MedSegError):
    """A parameter value is invalid (lower > upper, unknown method, ...)."""


class EmptyResultError(MedSegError):
    """An operation produced nothing (e.g. a threshold that selects no voxel)."""


class CancelledError(MedSegError):
    """The user cancelled a long-running operation."""
