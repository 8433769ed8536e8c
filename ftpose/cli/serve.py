"""``ftpose serve``: the web page and JSON API (ftpose.server) on uvicorn."""
from __future__ import annotations

import click

from ftpose.cli.options import load_predictor, model_option, parse_scales, weights_option


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; the default serves this machine only (0.0.0.0: every network).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@model_option
@weights_option
@click.option("--scales", "scales", multiple=True, callback=parse_scales, metavar="S[,S...]",
              help="Input heights relative to 368 px (default 1).")
@click.option("--flip", is_flag=True, help="Also run the mirrored image and average the maps.")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu, cuda.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for the network (default: one per core).")
@click.option("--max-upload-mb", default=10.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Largest photo upload accepted; larger ones get HTTP 413.")
def command(host, port, model_name, weights, scales, flip, device, threads, max_upload_mb):
    """Serve the pose page at / and the JSON API (POST /predict, GET /health, GET /models).

    \b
      curl -F image=@photo.jpg http://127.0.0.1:8000/predict

    answers {"people": [{"score", "coco17", "openpose18"}, ...], "count", "width",
    "height", "timing_ms", ...}; see README, "Web page and HTTP API".
    """
    try:
        import uvicorn

        from ftpose.server import create_app
    except ImportError as e:
        raise click.ClickException(f"ftpose serve needs the serve extra ({e.name} is missing): "
                                   "pip install 'ftpose[serve]'") from None
    if threads:
        import torch

        torch.set_num_threads(threads)
    predictor = load_predictor(model_name, weights, device=device, scales=scales or (1.0,), flip=flip)
    app = create_app(predictor, max_upload_bytes=round(max_upload_mb * 1024 * 1024))
    shown = f"[{host}]" if ":" in host else host
    served = getattr(predictor.network, "model_name", type(predictor.network).__name__)
    click.echo(f"ftpose serve: {served} on http://{shown}:{port}/ (Ctrl-C stops)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
