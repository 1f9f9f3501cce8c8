#!/usr/bin/env python3
"""One bi-level DARTS search step in PyTorch: the reference for `cargo bench --bench darts_step`.

Written from the DARTS paper (Liu et al., ICLR 2019) and the structure of its search network
(`cnn/model_search.py`, `cnn/operations.py`, `cnn/architect.py` of quark0/darts), and from
AutoDL-Projects' NAS-Bench-201 search network. A step updates the alphas on a validation
batch (first order: the gradient of L_val(w, a); second order: the unrolled gradient with the
finite-difference Hessian-vector product, w' = w - xi (grad_w L_train + wd w), eps = 0.01 /
||grad_w' L_val||), then the weights on a training batch (SGD, momentum 0.9, weight decay 3e-4,
clipping at global norm 5). Alphas: Adam lr 3e-4, betas (0.5, 0.999), weight decay 1e-3.

Prints one JSON object: the mean seconds per step of each order, after warm-up steps.

    python3 benches/pytorch/darts_step.py --space darts --channels 8 --layers 5 --batch 32 --size 16
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from common_ops import Zero

DARTS_PRIMITIVES = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]
NB201_PRIMITIVES = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in, c_out, k, stride, pad, affine):
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, k, stride, pad, bias=False),
                         nn.BatchNorm2d(c_out, affine=affine))


class DilConv(nn.Sequential):
    def __init__(self, c_in, c_out, k, stride, pad, dilation, affine):
        super().__init__(nn.ReLU(),
                         nn.Conv2d(c_in, c_in, k, stride, pad, dilation=dilation, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out, affine=affine))


class SepConv(nn.Sequential):
    def __init__(self, c_in, c_out, k, stride, pad, affine):
        super().__init__(DilConv(c_in, c_in, k, stride, pad, 1, affine),
                         DilConv(c_in, c_out, k, 1, pad, 1, affine))


class FactorizedReduce(nn.Module):
    def __init__(self, c_in, c_out, affine):
        super().__init__()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x):
        x = F.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def darts_op(name, c, stride):
    if name == "none":
        return Zero(stride)
    if name == "max_pool_3x3":
        return nn.Sequential(nn.MaxPool2d(3, stride, 1), nn.BatchNorm2d(c, affine=False))
    if name == "avg_pool_3x3":
        return nn.Sequential(nn.AvgPool2d(3, stride, 1, count_include_pad=False),
                             nn.BatchNorm2d(c, affine=False))
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, False)
    k = 3 if name.endswith("3x3") else 5
    if name.startswith("sep"):
        return SepConv(c, c, k, stride, k // 2, False)
    return DilConv(c, c, k, stride, k - 1, 2, False)


def nb201_op(name, c):
    if name == "none":
        return Zero(1)
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    k = 1 if name == "nor_conv_1x1" else 3
    return ReLUConvBN(c, c, k, 1, k // 2, False)


class MixedOp(nn.Module):
    def __init__(self, ops):
        super().__init__()
        self._ops = nn.ModuleList(ops)

    def forward(self, x, weights):
        # `none` contributes nothing: skipped, as our MixedOp skips it (the reference code
        # multiplies by zero, which only costs time).
        return sum(w * op(x) for w, op in zip(weights, self._ops) if not isinstance(op, Zero))


class DartsCell(nn.Module):
    def __init__(self, steps, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.reduction = reduction
        self.pre0 = FactorizedReduce(c_pp, c, False) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0, False)
        self.pre1 = ReLUConvBN(c_p, c, 1, 1, 0, False)
        self.steps = steps
        self._ops = nn.ModuleList()
        for i in range(steps):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self._ops.append(MixedOp([darts_op(p, c, stride) for p in DARTS_PRIMITIVES]))

    def forward(self, s0, s1, weights):
        states = [self.pre0(s0), self.pre1(s1)]
        offset = 0
        for _ in range(self.steps):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[2:], dim=1)


class DartsNetwork(nn.Module):
    def __init__(self, c, classes, layers, steps, in_ch, stem_multiplier=3):
        super().__init__()
        c_curr = stem_multiplier * c
        self.stem = nn.Sequential(nn.Conv2d(in_ch, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in [layers // 3, 2 * layers // 3]
            if reduction:
                c_curr *= 2
            self.cells.append(DartsCell(steps, c_pp, c_p, c_curr, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, steps * c_curr
        self.classifier = nn.Linear(c_p, classes)
        k = sum(2 + i for i in range(steps))
        self.alphas = [(1e-3 * torch.randn(k, len(DARTS_PRIMITIVES))).requires_grad_(),
                       (1e-3 * torch.randn(k, len(DARTS_PRIMITIVES))).requires_grad_()]

    def forward(self, x):
        s0 = s1 = self.stem(x)
        wn, wr = (F.softmax(a, dim=-1) for a in self.alphas)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, wr if cell.reduction else wn)
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))


class ResNetBasicblock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, True)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, True)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class Nb201Cell(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.edges = nn.ModuleList(MixedOp([nb201_op(p, c) for p in NB201_PRIMITIVES]) for _ in range(6))

    def forward(self, x, weights):
        nodes = [x]
        k = 0
        for i in range(1, 4):
            s = 0
            for j in range(i):
                s = s + self.edges[k](nodes[j], weights[k])
                k += 1
            nodes.append(s)
        return nodes[-1]


class Nb201Network(nn.Module):
    def __init__(self, c, n, classes, in_ch):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_ch, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        layers, width = [], c
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetBasicblock(width, 2 * width))
                width *= 2
            layers += [Nb201Cell(width) for _ in range(n)]
        self.layers = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU())
        self.classifier = nn.Linear(width, classes)
        self.alphas = [(1e-3 * torch.randn(6, len(NB201_PRIMITIVES))).requires_grad_()]

    def forward(self, x):
        w = F.softmax(self.alphas[0], dim=-1)
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, w) if isinstance(layer, Nb201Cell) else layer(x)
        return self.classifier(F.adaptive_avg_pool2d(self.lastact(x), 1).flatten(1))


def weight_params(model):
    return [p for p in model.parameters() if p.requires_grad]


def alpha_grads_unrolled(model, xt, yt, xv, yv, xi, wd):
    params = weight_params(model)
    loss = F.cross_entropy(model(xt), yt)
    g = torch.autograd.grad(loss, params)
    backup = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, gp in zip(params, g):
            p.sub_(xi * (gp + wd * p))
    loss_v = F.cross_entropy(model(xv), yv)
    grads = torch.autograd.grad(loss_v, model.alphas + params)
    d_alpha, d_w = grads[:len(model.alphas)], grads[len(model.alphas):]
    r = 0.01 / torch.cat([x.reshape(-1) for x in d_w]).norm()
    with torch.no_grad():  # w+ = w + r dw'
        for p, b, v in zip(params, backup, d_w):
            p.copy_(b + r * v)
    gp = torch.autograd.grad(F.cross_entropy(model(xt), yt), model.alphas)
    with torch.no_grad():  # w- = w - r dw'
        for p, b, v in zip(params, backup, d_w):
            p.copy_(b - r * v)
    gm = torch.autograd.grad(F.cross_entropy(model(xt), yt), model.alphas)
    with torch.no_grad():
        for p, b in zip(params, backup):
            p.copy_(b)
    return [da - xi * (a - b) / (2 * r) for da, a, b in zip(d_alpha, gp, gm)]


def step(model, w_opt, a_opt, xt, yt, xv, yv, second_order, lr, wd):
    a_opt.zero_grad()
    if second_order:
        for a, g in zip(model.alphas, alpha_grads_unrolled(model, xt, yt, xv, yv, lr, wd)):
            a.grad = g
    else:
        # The alphas' gradient only (the weights' gradient of the validation loss is not used).
        loss = F.cross_entropy(model(xv), yv)
        for a, g in zip(model.alphas, torch.autograd.grad(loss, model.alphas)):
            a.grad = g
    a_opt.step()
    w_opt.zero_grad()
    F.cross_entropy(model(xt), yt).backward()
    nn.utils.clip_grad_norm_(weight_params(model), 5.0)
    w_opt.step()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", choices=["darts", "nb201"], default="darts")
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--layers", type=int, default=5, help="cells (darts) or cells per stage (nb201)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--in-channels", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--orders", default="1,2")
    ap.add_argument("--threads", type=int, default=1,
                    help="intra-op threads (on a busy 2-core machine OpenMP's spin-waiting makes 2 slower than 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.space == "darts":
        model = DartsNetwork(args.channels, 10, args.layers, args.steps, args.in_channels)
    else:
        model = Nb201Network(args.channels, args.layers, 10, args.in_channels)
    lr, wd = 0.025, 3e-4
    w_opt = torch.optim.SGD(weight_params(model), lr, momentum=0.9, weight_decay=wd)
    a_opt = torch.optim.Adam(model.alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    shape = (args.batch, args.in_channels, args.size, args.size)
    xt, xv = torch.randn(shape), torch.randn(shape)
    yt, yv = torch.randint(0, 10, (args.batch,)), torch.randint(0, 10, (args.batch,))
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "config": vars(args)}
    for order in [int(o) for o in args.orders.split(",")]:
        for _ in range(args.warmup):
            step(model, w_opt, a_opt, xt, yt, xv, yv, order == 2, lr, wd)
        start = time.perf_counter()
        for _ in range(args.repeats):
            step(model, w_opt, a_opt, xt, yt, xv, yv, order == 2, lr, wd)
        out[f"order{order}_seconds"] = (time.perf_counter() - start) / args.repeats
    print(json.dumps(out))


if __name__ == "__main__":
    main()
