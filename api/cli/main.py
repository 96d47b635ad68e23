"""`tpc`: the command line of tpc sim.

Every command accepts `--format json` (before or after the subcommand) and then prints one
JSON document on stdout and nothing else there. Errors go to stderr with a non-zero exit.
"""

from __future__ import annotations

import sys
from importlib.metadata import version

import click
from rich.markup import escape

from api.cli.env_commands import env_group
from api.cli.exit_codes import ExitCode
from api.cli.experiment_commands import EXPERIMENT_COMMANDS
from api.cli.import_export_commands import IMPORT_EXPORT_COMMANDS
from api.cli.output import Output, hoist_format
from api.cli.product_commands import PRODUCT_COMMANDS
from api.cli.run_commands import run_group
from api.cli.server_commands import SERVER_COMMANDS
from api.cli.signal_commands import signals_group, validate_signal_config
from api.cli.task_commands import task_group
from api.cli.token_commands import TOKEN_COMMANDS
from api.cli.transcript_commands import transcript_group
from api.error_mapping import exit_code
from domain.errors import DomainError, InvalidInput


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format; also accepted after the subcommand.",
)
@click.version_option(version("tpc-sim"), prog_name="tpc")
@click.pass_context
def cli(ctx: click.Context, output_format: str) -> None:
    """tpc sim: controlled experiments on AI agents.

    Example: tpc sim experiment validate-signal-config signals.yaml
    """
    ctx.obj = Output("json" if output_format == "json" else "table")


@cli.group()
def sim() -> None:
    """Experiments, tasks, environments, runs and signals."""


@sim.group()
def experiment() -> None:
    """Create, run and read experiments."""


for command in EXPERIMENT_COMMANDS:
    experiment.add_command(command)
experiment.add_command(validate_signal_config)
for command in IMPORT_EXPORT_COMMANDS:
    experiment.add_command(command)
sim.add_command(task_group)
sim.add_command(env_group)
sim.add_command(run_group)
sim.add_command(signals_group)
sim.add_command(transcript_group)
for command in [*SERVER_COMMANDS, *PRODUCT_COMMANDS, *TOKEN_COMMANDS]:
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run `tpc` and map failures to exit codes (exit_codes.py)."""
    args = hoist_format(list(sys.argv[1:] if argv is None else argv))
    errors = Output("table").errors
    try:
        cli.main(args=args, prog_name="tpc", standalone_mode=False)
    except click.exceptions.Exit as stop:
        sys.exit(stop.exit_code)
    except click.Abort:
        errors.print("aborted")
        sys.exit(ExitCode.INTERRUPTED)
    except click.UsageError as failure:
        # click's own layout (usage, then a hint), with our lower-case `error:` prefix.
        if failure.ctx is not None:
            click.echo(failure.ctx.get_usage(), err=True)
            command = failure.ctx.command_path
            click.echo(f"Try '{command} {failure.ctx.help_option_names[0]}' for help.", err=True)
        errors.print(f"[red]error:[/] {escape(failure.format_message())}")
        sys.exit(ExitCode.UNUSABLE_INPUT)
    except click.ClickException as failure:
        errors.print(f"[red]error:[/] {escape(failure.format_message())}")
        sys.exit(ExitCode.FAILED)
    except DomainError as failure:
        errors.print(f"[red]error:[/] {escape(str(failure))}")
        if isinstance(failure, InvalidInput):
            for loc, message in failure.problems:
                errors.print(f"  {loc}: {message}" if loc else f"  {message}", markup=False)
        sys.exit(exit_code(failure))
