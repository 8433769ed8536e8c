"""Command-line option parsing shared by several subcommands."""
from __future__ import annotations

import click


def parse_scales(ctx, param, values) -> tuple[float, ...]:
    """Click callback for a repeatable ``--scales S[,S...]``: all values, flattened, each positive."""
    scales = []
    for value in values:
        for part in value.split(","):
            try:
                scale = float(part)
            except ValueError:
                raise click.BadParameter(f"{part!r} is not a number") from None
            if scale <= 0:
                raise click.BadParameter(f"{part!r} is not a positive scale")
            scales.append(scale)
    return tuple(scales)
