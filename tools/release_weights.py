"""Turn a training checkpoint into released weights: fp16 safetensors with ftpose's metadata.

    python tools/release_weights.py RUN/checkpoint_00001234.pt ftpose/assets/ftnet.safetensors

fp16 halves the file (ftnet: 42 MB instead of 84 MB); :func:`ftpose.models.load_model`
loads it back into an fp32 model (the values are rounded to fp16 once).
"""
from __future__ import annotations

import argparse

from ftpose.models import load_model, save_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="training checkpoint (.pt) or weights (.safetensors)")
    parser.add_argument("weights", help="output .safetensors file")
    args = parser.parse_args()
    model = load_model(args.checkpoint).half()
    save_weights(model, args.weights)
    print(f"wrote {args.weights}: {model.model_name} {model.model_options}")


if __name__ == "__main__":
    main()
