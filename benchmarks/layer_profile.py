"""Where the networks spend their time on this CPU, per layer kind, in any backend.

PyTorch backends: every conv is timed with forward hooks and grouped by kind (kernel,
channels, map size) next to its MACs, so a kind running far below the machine's GMAC/s
shows up; ``torch.profiler`` then splits the rest (concatenations, ReLUs, pooling) by
operator.  ONNX Runtime backends: the session's own profiler times every node of the
optimised graph (fused, re-laid-out, quantized), grouped by operator and kernel.
Weights are random (latency does not depend on them); ONNX files come from the
backends' cache.

    python benchmarks/layer_profile.py                                  # eager fp32, both models
    python benchmarks/layer_profile.py --backend onnxruntime-int8 --threads 1
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn

from ftpose.export import BACKENDS, create_backend
from ftpose.models import create_model


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="ftnet,openpose")
    parser.add_argument("--backend", default="torch", choices=[b for b in BACKENDS if b != "tensorrt"])
    parser.add_argument("--input", default="368x432", help="HxW (default 368x432)")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes (median per layer kind)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--top", type=int, default=20, help="rows per table")
    return parser.parse_args()


def conv_kind(kernel, in_channels, out_channels, height, width) -> str:
    return f"{kernel[0]}x{kernel[1]} {in_channels:>4}->{out_channels:<4} @{height}x{width}"


def time_convs(model: nn.Module, x: torch.Tensor, rounds: int):
    """Median seconds per pass, MACs and calls per conv kind, and the whole pass, via forward hooks."""
    starts, seconds, macs, calls = {}, defaultdict(list), {}, defaultdict(int)
    current = defaultdict(float)

    def before(module, args):
        starts[module] = time.perf_counter()

    def after(module, args, output):
        kind = conv_kind(module.kernel_size, module.in_channels, module.out_channels, *output.shape[-2:])
        current[kind] += time.perf_counter() - starts[module]
        taps = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        macs[kind] = macs.get(kind, 0) + output.numel() * taps
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


def torch_operators(model: nn.Module, x: torch.Tensor) -> list[tuple[str, float, int]]:
    """(operator, self CPU ms, calls) for one pass, slowest first."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model(x)
    rows = [(e.key, e.self_cpu_time_total / 1e3, e.count) for e in prof.key_averages()]
    return sorted((r for r in rows if r[1] > 0.05), key=lambda r: -r[1])


def profile_torch(backend, x, rounds: int, top: int) -> None:
    model = backend.network
    if backend.bf16:
        x = x.contiguous(memory_format=torch.channels_last)
    precision = torch.autocast("cpu", dtype=torch.bfloat16, enabled=backend.bf16)
    with torch.inference_mode(), precision:
        total, per_kind = time_convs(model, x, rounds)
        operators = torch_operators(model, x)
    conv_total = sum(t for t, _, _ in per_kind.values())
    print_kinds(total, per_kind, top)
    print(f"  outside convs (hooks included): {1e3 * (total - conv_total):.1f} ms")
    print(f"  {'operator (torch.profiler)':<40} {'self ms':>8} {'calls':>6}")
    for op, ms, count in operators[:10]:
        print(f"  {op:<40} {ms:>8.1f} {count:>6}")


def profile_onnxruntime(backend, x, rounds: int, threads: int | None, top: int) -> None:
    """Per-node times from ONNX Runtime's profiler on the session's optimised graph."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as work:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(work) / "profile")
        options.optimized_model_filepath = str(Path(work) / "optimised.onnx")
        session = ort.InferenceSession(str(backend.path), options, providers=["CPUExecutionProvider"])
        feed = {"image": x.numpy()}
        session.run(None, feed)                      # warm-up
        totals = []
        for _ in range(rounds):
            start = time.perf_counter()
            session.run(None, feed)
            totals.append(time.perf_counter() - start)
        events = json.loads(Path(session.end_profiling()).read_text())
        graph = onnx.load(options.optimized_model_filepath)
    weights = {w.name: tuple(w.dims) for w in graph.graph.initializer if len(w.dims) == 4}
    node_weights = {n.name: next((weights[i] for i in n.input if i in weights), None) for n in graph.graph.node}
    seconds, macs, calls = defaultdict(float), defaultdict(int), defaultdict(int)
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        name = event["name"].removesuffix("_kernel_time")
        op = event["args"].get("op_name", "?")
        weight = node_weights.get(name)
        shape = next(iter(event["args"].get("output_type_shape", [{}])[0].values()), None)
        if weight is not None and shape and len(shape) == 4:
            # NCHWc graphs pad channels to 8 or 16: kinds show padded widths
            height, width = (shape[1], shape[2]) if op.startswith("QLinear") else (shape[2], shape[3])
            kind = f"{op:<12} " + conv_kind(weight[2:], weight[1], weight[0], height, width)
            macs[kind] += height * width * weight[0] * weight[1] * weight[2] * weight[3]
        else:
            kind = op
        seconds[kind] += event["dur"] / 1e6
        calls[kind] += 1
    passes = rounds + 1
    per_kind = {k: (seconds[k] / passes, macs[k] // passes, calls[k] // passes) for k in seconds}
    print_kinds(statistics.median(totals), per_kind, top)


def print_kinds(total: float, per_kind: dict, top: int) -> None:
    all_macs = sum(m for _, m, _ in per_kind.values())
    print(f"  {1e3 * total:.1f} ms per pass ({all_macs / 1e9:.2f} GMAC counted, "
          f"{all_macs / total / 1e9:.0f} GMAC/s overall)")
    print(f"  {'kind':<40} {'calls':>5} {'ms':>8} {'share':>6} {'GMAC':>7} {'GMAC/s':>7}")
    for kind, (t, macs, calls) in sorted(per_kind.items(), key=lambda item: -item[1][0])[:top]:
        rate = f"{macs / t / 1e9:>7.0f}" if macs and t else f"{'-':>7}"
        print(f"  {kind:<40} {calls:>5} {1e3 * t:>8.1f} {100 * t / total:>5.1f}% {macs / 1e9:>7.2f} {rate}")


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    height, width = (int(v) for v in args.input.lower().split("x"))
    x = torch.rand(1, 3, height, width) - 0.5
    print(f"input {height}x{width}, backend {args.backend}, {torch.get_num_threads()} threads")
    for name in args.models.split(","):
        torch.manual_seed(0)     # the weights ftpose bench exports, so its cached ONNX files are reused
        backend = create_backend(args.backend, create_model(name).eval())
        print(f"\n{name}:")
        if args.backend.startswith("torch"):
            profile_torch(backend, x, args.rounds, args.top)
        else:
            profile_onnxruntime(backend, x, args.rounds, args.threads, args.top)


if __name__ == "__main__":
    main()
