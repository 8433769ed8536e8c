"""The ``ftpose`` command line.

Each subcommand lives in its own module ``ftpose/cli/<name>.py`` exposing a click
command called ``command``; modules are imported only when their command runs, so
``ftpose --help`` stays fast and one command's heavy imports never slow another.
"""
from __future__ import annotations

import importlib
import importlib.util
import traceback
import warnings

import click

SUBCOMMANDS = ("predict", "maps", "serve", "eval", "train", "distill", "info", "bench", "export")


def user_errors() -> tuple[type[Exception], ...]:
    """Exceptions that are the user's to fix (a file, a device, a download): one line, no traceback."""
    from ftpose.devices import DeviceError
    from ftpose.downloads import WeightsUnavailableError
    from ftpose.export import BackendUnavailableError
    from ftpose.files import InputError

    return InputError, DeviceError, WeightsUnavailableError, BackendUnavailableError


class _LazyGroup(click.Group):
    """Subcommands imported when run; their user errors printed as ``Error: ...`` (``--verbose``: with the traceback)."""

    def parse_args(self, ctx, args):
        # --verbose is accepted anywhere, e.g. after a subcommand's own options
        ctx.meta["ftpose.verbose"] = "--verbose" in args
        return super().parse_args(ctx, [a for a in args if a != "--verbose"])

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except user_errors() as e:
            if ctx.meta.get("ftpose.verbose"):
                traceback.print_exc()
            raise click.ClickException(str(e)) from None

    def list_commands(self, ctx):
        return [n for n in SUBCOMMANDS if importlib.util.find_spec(f"ftpose.cli.{n}") is not None]

    def get_command(self, ctx, name):
        if name not in self.list_commands(ctx):
            return None
        return importlib.import_module(f"ftpose.cli.{name}").command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ftpose")
def main():
    """Real-time multi-person pose estimation with deep feature transfer.

    A mistake (a missing file, an unknown device, a download that cannot be made) is
    reported in one line; add --verbose anywhere on the command line for the traceback.
    """
    warnings.formatwarning = _format_warning


_python_format_warning = warnings.formatwarning


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """ftpose's own warnings (e.g. counted annotation problems) as one line, without source lines."""
    if category.__module__.startswith("ftpose"):
        return f"warning: {message}\n"
    return _python_format_warning(message, category, filename, lineno, line)
