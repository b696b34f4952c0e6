"""Text from files and paths, made safe to show: a caption, a path or a field of a checkpoint can
hold newlines, ANSI/OSC escapes (clear the screen, set the window title) or rich markup.

    print(one_line(f"error: {path}: ..."), file=sys.stderr)   # one stderr line, whatever path holds
    console.print(f"[bold]{shown(caption)}[/bold]")             # literal text inside rich markup
"""

import argparse
import sys


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
def shortened(line: str, limit: int = 500) -> str:
    """A line cut in its middle to at most about `limit` characters: a refusal that quotes a forged
    6,000-character header stays readable, and its start (what is at fault) and end are kept."""
    if len(line) <= limit:
        return line
    head, tail = limit * 3 // 4, limit // 5
    return f"{line[:head]} [... {len(line) - head - tail} characters cut ...] {line[-tail:]}"


class OneLineParser(argparse.ArgumentParser):
    """A refused flag or value is one line, like every other refusal (argparse prints its usage block)."""

    def error(self, message: str):
        print(one_line(f"{self.prog}: error: {message} (see {self.prog} --help)"), file=sys.stderr)
        raise SystemExit(2)
