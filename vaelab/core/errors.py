"""The one exception type that reaches a user as a one-line message instead of a traceback."""


class UserError(Exception):
    """Something the user can fix: bad params, a missing file, bad input.

    Scripts catch it in :func:`vaelab.cli.options.run`, print ``error: <message>`` and exit with status 2.
    """

    exit_code = 2
