"""The ``ftpose`` command line.

Each subcommand lives in its own module ``ftpose/cli/<name>.py`` exposing a click
command called ``command``; modules are imported only when their command runs, so
``ftpose --help`` stays fast and one command's heavy imports never slow another.
"""
from __future__ import annotations

import importlib
import importlib.util
import warnings

import click

SUBCOMMANDS = ("predict", "maps", "serve", "eval", "train", "distill", "info", "bench", "export")


class _LazyGroup(click.Group):
    def list_commands(self, ctx):
        return [n for n in SUBCOMMANDS if importlib.util.find_spec(f"ftpose.cli.{n}") is not None]

    def get_command(self, ctx, name):
        if name not in self.list_commands(ctx):
            return None
        return importlib.import_module(f"ftpose.cli.{name}").command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ftpose")
def main():
    """Real-time multi-person pose estimation with deep feature transfer."""
    warnings.formatwarning = _format_warning


_python_format_warning = warnings.formatwarning


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """ftpose's own warnings (e.g. counted annotation problems) as one line, without source lines."""
    if category.__module__.startswith("ftpose"):
        return f"warning: {message}\n"
    return _python_format_warning(message, category, filename, lineno, line)
