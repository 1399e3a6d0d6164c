"""`rcm`: the platform's command line for developers and ops engineers."""

from __future__ import annotations

from pathlib import Path

import typer
from rcm_shared.auth import Role

from . import audit, bench, contracts, deadletters, edits, remittance, timeline
from .platform import REPLICAS_HELP

app = typer.Typer(no_args_is_help=True, help="Revenue-cycle platform tools.")
app.add_typer(contracts.app, name="contracts")
app.add_typer(timeline.app, name="episode")
app.add_typer(deadletters.app, name="dead-letters")
app.add_typer(remittance.app, name="remittance")
app.add_typer(edits.app, name="edits")
app.command("bench")(bench.command)
app.command("audit")(audit.command)


@app.command()
def run(
    episodes: int = typer.Option(200, min=1, help="How many episodes to drive."),
    seed: int = typer.Option(1, help="Seeds the synthetic episodes and the payer simulator."),
    timeout_s: float = typer.Option(1800.0, min=1, help="Give up waiting after this long."),
    stall_s: float = typer.Option(
        180.0, min=1, help="Stop early when nothing happened for this long."
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the summary here."),
    rate: float = typer.Option(1.0, min=0, help="Episodes started per second (0: at once)."),
    concurrency: int = typer.Option(8, min=1, help="Episodes at the front desk at once."),
    coders: int = typer.Option(2, min=1, help="Coder bots working the queue."),
    port_offset: int = typer.Option(0, help="Added to every service's HTTP port."),
    ack_delay_s: float = typer.Option(2.0, min=0, help="Payer simulator: 277CA delay."),
    remit_delay_s: float = typer.Option(5.0, min=0, help="Payer simulator: 835 delay."),
    replicas: int = typer.Option(1, min=1, help=REPLICAS_HELP),
) -> None:
    """Start everything, drive N synthetic episodes to a zero balance, summarise.

    Exit code 0 only if every episode closed and every ledger balanced.
    """
    from .platform import Infrastructure, PlatformError
    from .run import RunOptions, main

    options = RunOptions(
        episodes=episodes,
        seed=seed,
        timeout_s=timeout_s,
        stall_s=stall_s,
        rate_per_s=rate,
        concurrency=concurrency,
        coders=coders,
        port_offset=port_offset,
        ack_delay_s=ack_delay_s,
        remit_delay_s=remit_delay_s,
        json_path=json_path,
        replicas=replicas,
    )
    try:
        with Infrastructure() as infra:
            ok = main(infra, options)
    except PlatformError as error:
        typer.echo(f"rcm run: {error}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo("rcm run: interrupted; everything it started is stopped", err=True)
        raise typer.Exit(130) from None
    raise typer.Exit(0 if ok else 1)


@app.command()
def token(
    role: list[Role] = typer.Option(..., help="A platform role; repeat for several."),
    user: str = typer.Option(..., min=1, help="The subject: who signs in."),
    ttl_s: int = typer.Option(3600, min=60, max=86_400, help="Seconds until it expires."),
) -> None:
    """Print a bearer token of this machine's dev identity provider (the one `rcm run`
    gives the services), e.g. `curl -H "Authorization: Bearer $(rcm token --role coder
    --user alice)" ...`. For local use only: production tokens come from the
    organization's identity provider."""
    from .platform import dev_issuer

    typer.echo(dev_issuer().token(user, role, ttl_s))


if __name__ == "__main__":
    app()
