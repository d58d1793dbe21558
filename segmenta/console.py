"""The CLI's consoles: terminal width on a terminal, no width limit into a file or pipe."""

from __future__ import annotations

from rich.console import Console

# Rich assumes 80 columns when output is not a terminal and cuts or wraps tables there;
# a table redirected to a file or a pipe is read whole, so it may be as wide as it needs.
PIPED_WIDTH = 1000


def make_console(*, stderr: bool = False) -> Console:
    console = Console(stderr=stderr)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, width=PIPED_WIDTH)
