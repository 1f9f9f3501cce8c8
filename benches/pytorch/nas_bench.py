"""PyTorch side of `cargo bench --bench ops`: the same operations and training steps as the
Rust rows, written to match `nas_supernet`'s definitions (NAS-Bench-201's and DARTS's code).

Usage: python3 nas_bench.py --row ROW --batch 64 --threads 2 --warmup 2 --reps 10 [--device cpu]
       [--cpu-time]
Prints one JSON line: {"row", "ms" (median), "params"}. `--list` prints the row names.
"""
import argparse
import os
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from common_ops import Zero


# ---- operations (nas_supernet::ops) ----------------------------------------------------------

class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in, c_out, k, stride=1, dilation=1):
        pad = dilation * (k - 1) // 2
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, k, stride, pad, dilation, bias=False),
                         nn.BatchNorm2d(c_out))


class DilConv(nn.Sequential):
    def __init__(self, c_in, c_out, k, stride, dilation):
        pad = dilation * (k - 1) // 2
        super().__init__(nn.ReLU(),
                         nn.Conv2d(c_in, c_in, k, stride, pad, dilation, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


class SepConv(nn.Sequential):
    def __init__(self, c_in, c_out, k, stride):
        super().__init__(DilConv(c_in, c_in, k, stride, 1), DilConv(c_in, c_out, k, 1, 1))


class Pool(nn.Module):
    def __init__(self, kind, k, stride):
        super().__init__()
        pad = (k - 1) // 2
        self.pool = (nn.MaxPool2d(k, stride, pad) if kind == "max"
                     else nn.AvgPool2d(k, stride, pad, count_include_pad=False))

    def forward(self, x):
        return self.pool(x)


class FactorizedReduce(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        x = F.relu(x)
        h, w = x.shape[2], x.shape[3]
        shifted = F.pad(x, (0, w % 2, 0, h % 2))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class MBConv(nn.Module):
    def __init__(self, c_in, c_out, k, stride, expansion):
        super().__init__()
        hidden = c_in * expansion
        layers = []
        if expansion != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [nn.Conv2d(hidden, hidden, k, stride, (k - 1) // 2, groups=hidden, bias=False),
                   nn.BatchNorm2d(hidden), nn.ReLU6(),
                   nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.body(x)
        return y + x if self.residual else y


class Identity(nn.Module):
    def forward(self, x):
        return x


def darts_op(name, c, stride):
    return {
        "none": lambda: Zero(stride),
        "avg_pool_3x3": lambda: Pool("avg", 3, stride),
        "max_pool_3x3": lambda: Pool("max", 3, stride),
        "skip_connect": lambda: Identity() if stride == 1 else FactorizedReduce(c, c),
        "sep_conv_3x3": lambda: SepConv(c, c, 3, stride),
        "sep_conv_5x5": lambda: SepConv(c, c, 5, stride),
        "dil_conv_3x3": lambda: DilConv(c, c, 3, stride, 2),
        "dil_conv_5x5": lambda: DilConv(c, c, 5, stride, 2),
    }[name]()


# ---- NAS-Bench-201 network (nas_supernet::nb201_net) -----------------------------------------

NB201_BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def nb201_edges(arch):
    nodes = [n for n in arch.split("+")]
    edges = []  # (to, from, op)
    for to, node in enumerate(nodes, start=1):
        for item in node.strip("|").split("|"):
            op, src = item.split("~")
            edges.append((to, int(src), op))
    return edges


def nb201_op(name, c):
    return {
        "none": lambda: None,
        "skip_connect": lambda: Identity(),
        "nor_conv_1x1": lambda: ReLUConvBN(c, c, 1),
        "nor_conv_3x3": lambda: ReLUConvBN(c, c, 3),
        "avg_pool_3x3": lambda: Pool("avg", 3, 1),
    }[name]()


class Nb201Cell(nn.Module):
    def __init__(self, arch, c):
        super().__init__()
        self.edges = nb201_edges(arch)
        self.ops = nn.ModuleList([m for m in (nb201_op(op, c) for _, _, op in self.edges)
                                  if m is not None])
        self.live = [op != "none" for _, _, op in self.edges]

    def forward(self, x):
        nodes = [x]
        it = iter(self.ops)
        for to in range(1, 4):
            total = None
            for (t, src, _), live in zip(self.edges, self.live):
                if t != to or not live:
                    continue
                y = next(it)(nodes[src])
                total = y if total is None else total + y
            nodes.append(total if total is not None else torch.zeros_like(x))
        return nodes[-1]


class ResidualReduce(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x):
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class Nb201Network(nn.Module):
    def __init__(self, arch=NB201_BEST, c=16, n=5, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        layers, width = [], c
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduce(width, 2 * width))
                width *= 2
            layers += [Nb201Cell(arch, width) for _ in range(n)]
        self.layers = nn.Sequential(*layers)
        self.last = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU())
        self.classifier = nn.Linear(width, classes)

    def forward(self, x):
        x = self.last(self.layers(self.stem(x)))
        return self.classifier(x.mean(dim=(2, 3)))


# ---- DARTS network (nas_supernet::darts_net, quark0/darts NetworkCIFAR) ----------------------

DARTS_V2 = dict(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5],
)


class DartsCell(nn.Module):
    def __init__(self, genotype, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.pre0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1)
        self.pre1 = ReLUConvBN(c_p, c, 1)
        ops = genotype["reduce" if reduction else "normal"]
        self.concat = genotype["reduce_concat" if reduction else "normal_concat"]
        self.inputs = [i for _, i in ops]
        self.ops = nn.ModuleList([darts_op(name, c, 2 if reduction and i < 2 else 1)
                                  for name, i in ops])
        self.out_channels = c * len(self.concat)

    def forward(self, s0, s1):
        states = [self.pre0(s0), self.pre1(s1)]
        for k in range(len(self.ops) // 2):
            a = self.ops[2 * k](states[self.inputs[2 * k]])
            b = self.ops[2 * k + 1](states[self.inputs[2 * k + 1]])
            states.append(a + b)
        return torch.cat([states[i] for i in self.concat], dim=1)


class DartsNetwork(nn.Module):
    def __init__(self, genotype=DARTS_V2, c=16, layers=8, stem_multiplier=3, classes=10):
        super().__init__()
        stem_c = stem_multiplier * c
        self.stem = nn.Sequential(nn.Conv2d(3, stem_c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(stem_c))
        c_pp, c_p, cur = stem_c, stem_c, c
        cells, reduction_prev = [], False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                cur *= 2
            cell = DartsCell(genotype, c_pp, c_p, cur, reduction, reduction_prev)
            reduction_prev = reduction
            cells.append(cell)
            c_pp, c_p = c_p, cell.out_channels
        self.cells = nn.ModuleList(cells)
        self.classifier = nn.Linear(c_p, classes)

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(s1.mean(dim=(2, 3)))


# ---- rows ------------------------------------------------------------------------------------

C, HW = 16, 32

# The DARTS search network and bi-level step: the same reference as `cargo bench --bench
# darts_step` (benches/pytorch/darts_step.py, beside this file).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import darts_step  # noqa: E402


class MixedRow(nn.Module):
    """A DARTS MixedOp over the 8 primitives (batch norms without affine parameters, pooling
    followed by a batch norm, as `model_search.py`), with fixed softmax weights."""

    def __init__(self, c):
        super().__init__()
        self.mixed = darts_step.MixedOp([darts_step.darts_op(p, c, 1)
                                         for p in darts_step.DARTS_PRIMITIVES])
        self.register_buffer("weights", torch.softmax(torch.randn(8), 0))

    def forward(self, x):
        return self.mixed(x, self.weights)

# name -> (module factory, input channels, spatial size); see benches/ops.rs for the same list.
OP_ROWS = {
    "harness": (lambda: nn.Identity(), C, HW),
    "conv3x3": (lambda: nn.Conv2d(C, C, 3, padding=1, bias=False), C, HW),
    "conv1x1": (lambda: nn.Conv2d(C, C, 1, bias=False), C, HW),
    "depthwise3x3": (lambda: nn.Conv2d(C, C, 3, padding=1, groups=C, bias=False), C, HW),
    "dilated3x3_d2": (lambda: nn.Conv2d(C, C, 3, padding=2, dilation=2, groups=C, bias=False), C, HW),
    "nor_conv_3x3": (lambda: ReLUConvBN(C, C, 3), C, HW),
    "nor_conv_1x1": (lambda: ReLUConvBN(C, C, 1), C, HW),
    "sep_conv_3x3": (lambda: SepConv(C, C, 3, 1), C, HW),
    "sep_conv_5x5": (lambda: SepConv(C, C, 5, 1), C, HW),
    "dil_conv_3x3": (lambda: DilConv(C, C, 3, 1, 2), C, HW),
    "avg_pool_3x3": (lambda: Pool("avg", 3, 1), C, HW),
    "max_pool_3x3": (lambda: Pool("max", 3, 1), C, HW),
    "batch_norm": (lambda: nn.BatchNorm2d(C), C, HW),
    "factorized_reduce": (lambda: FactorizedReduce(C, 2 * C), C, HW),
    "mbconv_3x3_e6": (lambda: MBConv(C, C, 3, 1, 6), C, HW),
    "mixed_op": (lambda: MixedRow(C), C, HW),
}

STEP_ROWS = {
    "nb201_step": lambda: Nb201Network(),
    "darts_step": lambda: DartsNetwork(),
    # DARTS' search network at C = 8, 5 cells, 4 nodes, on 16×16 inputs and a quarter of the
    # batch (the full-size search step takes a minute on a 2-core CPU), first and second order.
    "darts_bilevel_step": lambda: darts_step.DartsNetwork(8, 10, 5, 4, 3),
    "darts_bilevel_step2": lambda: darts_step.DartsNetwork(8, 10, 5, 4, 3),
}


def median_ms(fn, warmup, reps, sync, clock=time.perf_counter):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        t = clock()
        fn()
        sync()
        times.append((clock() - t) * 1e3)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--row")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--device", default="cpu")
    p.add_argument("--list", action="store_true")
    p.add_argument("--cpu-time", action="store_true", help="process CPU time instead of wall time")
    a = p.parse_args()
    if a.list:
        print(" ".join(list(OP_ROWS) + list(STEP_ROWS)))
        return
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    # Several rows (comma-separated) run in one process, one JSON line each: on a GPU machine
    # importing torch and starting CUDA costs seconds per process.
    for row in a.row.split(","):
        print(json.dumps(run_row(a, row.strip(), dev, sync)), flush=True)


def run_row(a, row, dev, sync):
    torch.manual_seed(0)
    if row in OP_ROWS:
        make, c, hw = OP_ROWS[row]
        m = make().to(dev).train()
        x = torch.randn(a.batch, c, hw, hw, device=dev, requires_grad=True)
        with torch.no_grad():
            probe = torch.randn_like(m(x))

        def step():
            m.zero_grad(set_to_none=True)
            x.grad = None
            (m(x) * probe).sum().backward()
    elif row.startswith("darts_bilevel_step"):
        m = STEP_ROWS[row]().to(dev).train()
        m.alphas = [al.detach().to(dev).requires_grad_() for al in m.alphas]
        n = max(1, a.batch // 4)
        shape = (n, 3, HW // 2, HW // 2)
        xt, xv = torch.randn(shape, device=dev), torch.randn(shape, device=dev)
        yt = torch.randint(0, 10, (n,), device=dev)
        yv = torch.randint(0, 10, (n,), device=dev)
        lr, wd = 0.025, 3e-4
        second_order = row == "darts_bilevel_step2"
        w_opt = torch.optim.SGD(darts_step.weight_params(m), lr, momentum=0.9, weight_decay=wd)
        a_opt = torch.optim.Adam(m.alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)

        def step():
            darts_step.step(m, w_opt, a_opt, xt, yt, xv, yv, second_order, lr, wd)
    elif row in STEP_ROWS:
        m = STEP_ROWS[row]().to(dev).train()
        x = torch.randn(a.batch, 3, HW, HW, device=dev)
        y = torch.randint(0, 10, (a.batch,), device=dev)
        opt = torch.optim.SGD(m.parameters(), lr=0.025, momentum=0.9, nesterov=True,
                              weight_decay=5e-4)
        loss_fn = nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(m(x), y)
            loss.backward()
            nn.utils.clip_grad_norm_(m.parameters(), 5.0)
            opt.step()
    else:
        sys.exit(f"unknown row {row!r}; rows: {' '.join(list(OP_ROWS) + list(STEP_ROWS))}")
    params = sum(p.numel() for p in m.parameters())
    clock = time.process_time if a.cpu_time else time.perf_counter
    ms = median_ms(step, a.warmup, a.reps, sync, clock)
    return {"row": row, "ms": ms, "params": params}


if __name__ == "__main__":
    main()
