"""Text from files and paths, made safe to show: a caption, a path or a field of a checkpoint can
hold newlines, ANSI/OSC escapes (clear the screen, set the window title) or rich markup.

    print(one_line(f"error: {path}: ..."), file=sys.stderr)   # one stderr line, whatever path holds
    console.print(f"[bold]{shown(caption)}[/bold]")             # literal text inside rich markup
"""


def one_line(text: str) -> str:
    """Control and other non-printable characters as Python escapes (`\\n`, `\\x1b`): the text
    stays one line and the terminal interprets nothing in it."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))


def shown(text: str) -> str:
    """one_line, and square brackets escaped so rich prints them instead of reading markup."""
    from rich.markup import escape  # rich only where something is printed with it

    return escape(one_line(text))


def without_controls(text: str) -> str:
    """A CSV cell's text without control characters (a later `cat` of the file stays harmless)."""
    return "".join(c for c in str(text) if c.isprintable() or c == " ")


def summary(docstring: str | None) -> str:
    """A module's first docstring line for --help; empty under `python -OO`, which strips docstrings."""
    return docstring.splitlines()[0] if docstring else ""
