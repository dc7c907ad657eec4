"""The two exceptions a caller of the engine must know about.

`InputError` is everything the user can fix (a bad file, key, shape or value):
its message is the one sentence the user reads, so it names the file, key or
shape at fault. The CLI prints it as `error: ...`, the GUI shows it in a
dialog. Any other exception is a bug and keeps its traceback.
"""


class InputError(ValueError):
    """Bad input the user can fix; the message is shown to the user as is."""


class PairSizeError(InputError):
    """The two images of a real pair do not fit each other in size (no integer ratio between
    them, or one below 2): a caller may suggest opening both images anew."""


class Cancelled(Exception):
    """Raised inside the pipeline when the caller's cancel token is set."""
