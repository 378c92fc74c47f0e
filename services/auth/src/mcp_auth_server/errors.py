"""The one error type an operator fixes by changing configuration (settings, the database, the secret).

Every command turns it into one line on stderr and exit status 2. It lives in a module of its own,
importing nothing, so the command line can catch it without loading what raises it.
"""


class ConfigurationError(Exception):
    """A setting, the database or the secret is not as the service needs it; the message says which."""
