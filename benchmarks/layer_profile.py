"""Where the networks spend their time on this CPU: per layer kind, per operator.

Every conv is timed with forward hooks and grouped by its kind (kernel, channels and
map size), next to its MACs, so a kind that runs far below the machine's GMAC/s shows
up; ``torch.profiler`` then splits the rest (concatenations, ReLUs, additions,
pooling) by operator.  Weights are random: latency does not depend on their values.

    python benchmarks/layer_profile.py                         # ftnet and openpose, fp32
    python benchmarks/layer_profile.py --models ftnet --channels-last --bf16
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections import defaultdict

import torch
from torch import nn

from ftpose.models import create_model


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="ftnet,openpose")
    parser.add_argument("--input", default="368x432", help="HxW (default 368x432)")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes (median per layer)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    return parser.parse_args()


def conv_kind(conv: nn.Conv2d, output: torch.Tensor) -> str:
    k = "x".join(map(str, conv.kernel_size))
    return f"{k} {conv.in_channels:>4}->{conv.out_channels:<4} @{output.shape[-2]}x{output.shape[-1]}"


def conv_macs(conv: nn.Conv2d, output: torch.Tensor) -> int:
    """MACs of one conv call: one multiply-accumulate per kernel tap, input channel and output."""
    taps = conv.kernel_size[0] * conv.kernel_size[1] * conv.in_channels // conv.groups
    return output.numel() * taps


def time_convs(model: nn.Module, x: torch.Tensor, rounds: int):
    """Median seconds per pass, MACs and call count per conv kind; and the whole pass."""
    starts, seconds, macs, calls = {}, defaultdict(list), {}, defaultdict(int)
    current = defaultdict(float)

    def before(module, args):
        starts[module] = time.perf_counter()

    def after(module, args, output):
        kind = conv_kind(module, output)
        current[kind] += time.perf_counter() - starts[module]
        macs[kind] = macs.get(kind, 0) + conv_macs(module, output)
        calls[kind] += 1

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    totals = []
    try:
        model(x)                          # warm-up
        for _ in range(rounds):
            current.clear()
            macs.clear()
            calls.clear()
            start = time.perf_counter()
            model(x)
            totals.append(time.perf_counter() - start)
            for kind, t in current.items():
                seconds[kind].append(t)
    finally:
        for handle in handles:
            handle.remove()
    per_kind = {kind: (statistics.median(t), macs[kind], calls[kind]) for kind, t in seconds.items()}
    return statistics.median(totals), per_kind


def operator_table(model: nn.Module, x: torch.Tensor) -> list[tuple[str, float, int]]:
    """(operator, self CPU ms, calls) for one pass, slowest first."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model(x)
    rows = [(e.key, e.self_cpu_time_total / 1e3, e.count) for e in prof.key_averages()]
    return sorted((r for r in rows if r[1] > 0.05), key=lambda r: -r[1])


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    height, width = (int(v) for v in args.input.lower().split("x"))
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    x = (torch.rand(1, 3, height, width) - 0.5).contiguous(memory_format=fmt)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
    print(f"input {height}x{width}, {torch.get_num_threads()} threads, "
          f"{'channels_last' if args.channels_last else 'NCHW'}, {'bf16 autocast' if args.bf16 else 'fp32'}")
    for name in args.models.split(","):
        model = create_model(name).eval().to(memory_format=fmt)
        with torch.inference_mode(), autocast:
            total, per_kind = time_convs(model, x, args.rounds)
            operators = operator_table(model, x)
        conv_total = sum(t for t, _, _ in per_kind.values())
        all_macs = sum(m for _, m, _ in per_kind.values())
        print(f"\n{name}: {1e3 * total:.1f} ms per pass, {all_macs / 1e9:.2f} GMAC, "
              f"{all_macs / total / 1e9:.0f} GMAC/s overall; convs {1e3 * conv_total:.1f} ms")
        print(f"  {'conv kind':<26} {'calls':>5} {'ms':>8} {'share':>6} {'GMAC':>7} {'GMAC/s':>7}")
        for kind, (t, macs, calls) in sorted(per_kind.items(), key=lambda item: -item[1][0]):
            print(f"  {kind:<26} {calls:>5} {1e3 * t:>8.1f} {100 * t / total:>5.1f}% {macs / 1e9:>7.2f} "
                  f"{macs / t / 1e9:>7.0f}")
        print(f"  outside convs (hooks included): {1e3 * (total - conv_total):.1f} ms")
        print(f"  {'operator (torch.profiler)':<40} {'self ms':>8} {'calls':>6}")
        for op, ms, count in operators[:10]:
            print(f"  {op:<40} {ms:>8.1f} {count:>6}")


if __name__ == "__main__":
    main()
