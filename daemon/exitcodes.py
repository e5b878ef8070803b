"""Exit codes shared by ``didcommd`` and ``didcommctl`` (sysexits-like, small)."""

OK = 0
#: A failure not covered below (an error reply, a bad message, a failed check).
FAILURE = 1
#: Wrong command line: unknown option, missing argument, conflicting flags.
USAGE = 2
#: Input data was bad (malformed JSON, a message that does not verify).
DATA = 3
#: The daemon is not running / the control socket cannot be reached.
UNAVAILABLE = 4
#: Refused: not allowed (wrong uid, wrong passphrase).
PERMISSION = 5
#: Configuration file or environment is invalid.
CONFIG = 6

EPILOG = """exit codes:
  0  success
  1  failure (an error reply, a failed check)
  2  usage error (bad options or arguments)
  3  bad input data (malformed JSON, a message that does not verify or decrypt)
  4  the daemon is unavailable (control socket not found or not answering)
  5  permission refused (wrong user, wrong passphrase)
  6  invalid configuration"""


class UsageError(Exception):
    """A command-line value that cannot be used (bad JSON in --body, unreadable file).

    Here, not in ``daemon.ctl``: run as ``python -m daemon.ctl`` that module is
    ``__main__``, and the command modules would raise a class it does not catch.
    """

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code
