"""The CLI's error type: an operation failed for a reason the operator can act on."""


class CommandError(Exception):
    pass
