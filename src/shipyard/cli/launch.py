"""The ``shipyard`` console script. Standard library only until it knows where the
command runs: in this home's command daemon when one serves it (``daemon_link``),
else here, through the typer app in ``cli/main.py``."""

from __future__ import annotations

import sys


def main() -> None:
    """Forward the command to the daemon, or run it in this process."""
    from shipyard.cli.daemon_link import forward

    code = forward(sys.argv[1:])
    if code is None:
        from shipyard.cli.main import main as run_here

        run_here()
    else:
        sys.exit(code)


if __name__ == "__main__":
    main()
