"""`rcm`: the platform's command line for developers and ops engineers."""

from __future__ import annotations

import typer

from . import contracts

app = typer.Typer(no_args_is_help=True, help="Revenue-cycle platform tools.")
app.add_typer(contracts.app, name="contracts")

if __name__ == "__main__":
    app()
