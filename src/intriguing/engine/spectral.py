"""Spectral analysis of instability: upper Lipschitz bounds per layer, and what networks do.

Why: section 4.3 of Szegedy et al. (2014) asks how far a network's output phi(x) can move when
its input moves by r. Writing phi as a chain of layers phi_k, each with a Lipschitz constant L_k
(``||phi_k(x) - phi_k(x + r)|| <= L_k ||r||``), the whole network satisfies
``||phi(x) - phi(x + r)|| <= L ||r||`` with ``L = prod_k L_k`` (their Table 5 lists the L_k of
AlexNet). This module computes each L_k:

- fully connected layers: the largest singular value of the weight matrix;
- convolutions: the paper's Fourier formula. By Parseval, a convolution with stride s is
  block-diagonal in frequency: at each frequency xi of the subsampled grid it acts as a small
  matrix ``A(xi)`` of shape ``(D, C * s^2)`` built from the 2-D DFTs of the kernels at the
  ``s^2`` frequencies that alias onto xi, and its operator norm is ``max_xi ||A(xi)||``.
  We evaluate it on a grid large enough that the zero-padded layer at its real input size is a
  restriction of the circular convolution on that grid, so the number is an upper bound for the
  real layer, and exact for circular padding;
- activations: sigmoid 1/4, ReLU 1; max-pooling 1 when windows do not overlap, but
  ``sqrt(ceil(k1/s1) * ceil(k2/s2))`` when they do (AlexNet's 3x3 windows with stride 2: 2,
  not the 1 the paper assumes); the paper's contrast normalisation ``eps^-gamma``.

``power_iteration`` measures each linear layer's operator norm through autograd on the layer's
actual linear map at its real input shape, which checks the formulas; ``network_bounds`` walks a
chain of layers (the zoo's models, torchvision's AlexNet); ``jacobian_norms`` and
``perturbation_ratios`` measure how much the trained networks actually stretch perturbations.

References: Szegedy et al. 2014, arXiv:1312.6199, section 4.3 and Table 5; the chapter
"Spectral analysis of instability" explains the derivation.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..plumbing import checks

#: The Lipschitz constant of the logistic sigmoid: the largest value of its derivative, at 0.
SIGMOID_BOUND = 0.25
#: Matrices with both sides above this use Lanczos (ARPACK) instead of a dense SVD.
DENSE_SVD_LIMIT = 2048


# --------------------------------------------------------------------------------------------
# Fully connected layers


def linear_bound(weight: torch.Tensor) -> float:
    """The operator norm of a fully connected layer: the largest singular value of ``weight``.

    Exact (a dense SVD in float64; for matrices larger than ``DENSE_SVD_LIMIT`` on both sides,
    Lanczos iterations run to machine precision, e.g. AlexNet's 4096x9216 layer).

    Args:
        weight: ``(out, in)``, as ``nn.Linear`` stores it.
    """
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise ValueError(f"weight must be a 2-D tensor (out, in), got "
                         f"{getattr(weight, 'shape', type(weight))}")
    w = weight.detach().to("cpu", torch.float64)
    if min(w.shape) <= DENSE_SVD_LIMIT:
        return float(torch.linalg.svdvals(w)[0])
    from scipy.sparse.linalg import svds

    s = svds(w.numpy(), k=1, tol=0, return_singular_vectors=False, random_state=0)
    return float(s[0])


# --------------------------------------------------------------------------------------------
# Convolutions: the Fourier formula


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(checks.is_int(v) and v >= 0 for v in pair):
        raise ValueError(f"{name} must be a non-negative int or a pair of them, got {value!r}")
    return pair  # type: ignore[return-value]


def conv_grid(input_size: int | Sequence[int], kernel_size: int | Sequence[int],
              stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0, *,
              circular: bool = False) -> tuple[int, int]:
    """The DFT grid ``(N1, N2)`` on which the Fourier formula bounds a layer at its input size.

    Zero padding: the smallest multiple of the stride that holds the padded input,
    ``N >= H + 2p``. Then no output of the real layer wraps around, so the layer is a
    restriction (fewer inputs, fewer outputs) of the circular convolution on the grid, whose
    norm the formula gives exactly: an upper bound for the layer. Circular padding: ``N = H``,
    where the formula is exact when the stride divides H and the layer computes every output of
    the circular convolution (odd kernel, ``p = (k - 1) / 2``).

    Args:
        input_size: ``H`` or ``(H, W)``.
        kernel_size, stride, padding: as ``nn.Conv2d`` takes them (``padding`` per side).
        circular: ``padding_mode="circular"``.
    """
    hw = _pair(input_size, "input_size")
    ks = _pair(kernel_size, "kernel_size")
    st = _pair(stride, "stride")
    pd = _pair(padding, "padding")
    if min(hw) < 1 or min(ks) < 1 or min(st) < 1:
        raise ValueError(f"input_size, kernel_size and stride must be positive, got {hw}, {ks}, "
                         f"{st}")
    grid = []
    for h, k, s, p in zip(hw, ks, st, pd):
        if h + 2 * p < k:
            raise ValueError(f"kernel_size {k} exceeds the padded input {h} + 2*{p}")
        if circular:
            if h % s or k > h:
                raise ValueError(f"circular padding needs a stride that divides input_size and a "
                                 f"kernel no larger than it, got input {h}, stride {s}, kernel {k}")
            if (h + 2 * p - k) // s + 1 > h // s:
                raise ValueError(f"circular padding {p} with kernel {k} and stride {s} computes "
                                 f"some outputs twice on input {h}: no bound is implemented")
            grid.append(h)
        else:
            grid.append(-(-(h + 2 * p) // s) * s)
    return grid[0], grid[1]


def fourier_matrices(weight: torch.Tensor, stride: int | Sequence[int],
                     grid: int | Sequence[int]) -> torch.Tensor:
    """The paper's ``A(xi)`` for every frequency xi of the subsampled grid.

    A convolution ``y_d = sum_c x_c * w_{d,c}`` subsampled with stride ``s`` maps the DFT
    coefficients of the input at the ``s1 * s2`` frequencies ``xi + l * N / s`` (``l`` over the
    stride phases) to the output's coefficient at xi: ``A(xi)[d, (c, l)] = w_hat_{d,c}(xi + l N/s)
    / sqrt(s1 s2)``, with the unnormalised DFT on the ``N1 x N2`` grid. The scale follows from
    Parseval with plain subsampling ``y[m] = z[m s]``.

    Args:
        weight: ``(D, C, k1, k2)`` as ``nn.Conv2d`` stores it (one group).
        stride: ``s`` or ``(s1, s2)``.
        grid: ``N`` or ``(N1, N2)``, multiples of the stride, at least the kernel size.

    Returns:
        ``(N1/s1, N2/s2, D, C*s1*s2)`` complex128.
    """
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        raise ValueError(f"weight must be a 4-D tensor (D, C, k1, k2), got "
                         f"{getattr(weight, 'shape', type(weight))}")
    (s1, s2), (n1, n2) = _pair(stride, "stride"), _pair(grid, "grid")
    d, c, k1, k2 = weight.shape
    if min(s1, s2) < 1 or n1 % s1 or n2 % s2 or n1 < k1 or n2 < k2:
        raise ValueError(f"grid must be multiples of the stride {(s1, s2)} and hold the kernel "
                         f"{(k1, k2)}, got {(n1, n2)}")
    w_hat = torch.fft.fft2(weight.detach().to("cpu", torch.float64), s=(n1, n2))
    m1, m2 = n1 // s1, n2 // s2
    # frequency index l * (N/s) + xi: split each axis into (phase l, subsampled frequency xi)
    a = w_hat.reshape(d, c, s1, m1, s2, m2).permute(3, 5, 0, 1, 2, 4)
    return a.reshape(m1, m2, d, c * s1 * s2) / math.sqrt(s1 * s2)


def fourier_norms(weight: torch.Tensor, stride: int | Sequence[int],
                  grid: int | Sequence[int], *, groups: int = 1,
                  chunk: int = 64) -> torch.Tensor:
    """``||A(xi)||`` (largest singular value) at every frequency: ``(N1/s1, N2/s2)`` float64.

    Grouped convolutions are block-diagonal across groups: the norm at xi is the largest over the
    groups. Real kernels give ``A(-xi) = conj(A(xi))`` up to a column permutation, so only half
    of the frequencies are decomposed and the rest mirrored; they are processed ``chunk`` rows at
    a time to bound memory.
    """
    if not checks.is_int(groups) or groups < 1 or weight.shape[0] % groups:
        raise ValueError(f"groups must be a positive int dividing {weight.shape[0]} output "
                         f"channels, got {groups!r}")
    best = None
    for w in weight.chunk(groups, dim=0):
        a = fourier_matrices(w, stride, grid)
        m1, m2 = a.shape[:2]
        half = a[:, : m2 // 2 + 1]
        norms = torch.cat([torch.linalg.matrix_norm(half[i:i + chunk], ord=2)
                           for i in range(0, m1, chunk)])
        rows = (-torch.arange(m1)) % m1
        cols = torch.arange(m2)
        mirror = torch.where(cols <= m2 // 2, cols, (-cols) % m2)
        full = torch.where((cols <= m2 // 2)[None, :], norms[:, mirror.clamp(max=m2 // 2)],
                           norms[rows][:, mirror.clamp(max=m2 // 2)])
        best = full if best is None else torch.maximum(best, full)
    return best


def conv_bound(weight: torch.Tensor, *, input_size: int | Sequence[int],
               stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
               groups: int = 1, circular: bool = False,
               grid: int | Sequence[int] | None = None) -> float:
    """Upper bound on a convolution's operator norm at its input size (the paper's formula).

    ``max_xi ||A(xi)||`` over the DFT grid of ``conv_grid`` (or a larger ``grid``, a multiple of
    the stride no smaller than it: larger grids approach the size-free supremum over continuous
    frequencies, which bounds the layer at every input size). Bias is irrelevant to Lipschitz
    constants.

    Args:
        weight: ``(D, C/groups, k1, k2)``.
        input_size: ``H`` or ``(H, W)`` of the layer's input.
        stride, padding, groups: as ``nn.Conv2d`` (``padding`` per side, integers).
        circular: ``padding_mode="circular"`` (exact in the cases ``conv_grid`` names).
        grid: override the DFT grid.
    """
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        raise ValueError(f"weight must be a 4-D tensor (D, C, k1, k2), got "
                         f"{getattr(weight, 'shape', type(weight))}")
    base = conv_grid(input_size, tuple(weight.shape[2:]), stride, padding, circular=circular)
    if grid is not None:
        g, st = _pair(grid, "grid"), _pair(stride, "stride")
        if circular and g != base:
            raise ValueError(f"grid must equal the input size {base} for circular padding, "
                             f"got {g}")
        if any(a < b or a % s for a, b, s in zip(g, base, st)):
            raise ValueError(f"grid must be multiples of the stride {st}, at least {base}, "
                             f"got {g}")
        base = g
    return float(fourier_norms(weight, stride, base, groups=groups).max())


# --------------------------------------------------------------------------------------------
# Nonlinear layers


def maxpool_bound(kernel_size: int | Sequence[int], stride: int | Sequence[int]) -> float:
    """Lipschitz constant of max-pooling: ``sqrt(ceil(k1/s1) * ceil(k2/s2))``.

    ``|max_W a - max_W b| <= ||(a - b)_W||``, so ``||pool(a) - pool(b)||^2`` is at most the sum
    over windows of ``||(a - b)_W||^2``, which counts each pixel once per window holding it: at
    most ``ceil(k/s)`` windows per axis. Non-overlapping pooling (k <= s) gives 1, the paper's
    "contractive". Overlapping pooling does not: a pixel that is the maximum of all four 3x3
    windows holding it (stride 2) moves four outputs, a gain of 2, which is attained.
    """
    ks, st = _pair(kernel_size, "kernel_size"), _pair(stride, "stride")
    if min(ks) < 1 or min(st) < 1:
        raise ValueError(f"kernel_size and stride must be positive, got {ks}, {st}")
    return math.sqrt(math.prod(-(-k // s) for k, s in zip(ks, st)))


def contrast_normalization_bound(eps: float, gamma: float) -> float:
    """The paper's bound ``eps^-gamma`` for ``phi(x) = x / (eps + ||x||^2)^gamma``.

    The Jacobian is ``(eps + r^2)^-gamma (I - 2 gamma x x^T / (eps + r^2))``: eigenvalue
    ``(eps + r^2)^-gamma`` across x and that times ``1 - 2 gamma t`` (``t < 1``) along it, so its
    norm is at most ``eps^-gamma`` for ``0 <= gamma <= 1`` (the paper states [0.5, 1]), attained
    at x = 0. (AlexNet's local response normalisation is a different, per-channel form.)
    """
    checks.positive_float("eps", eps)
    if not (checks.is_real(gamma) and 0 <= gamma <= 1):
        raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
    return float(eps) ** -float(gamma)


def contrast_normalize(x: torch.Tensor, eps: float, gamma: float) -> torch.Tensor:
    """The paper's contrast normalisation of each row: ``x / (eps + ||x||^2)^gamma``."""
    return x / (eps + x.pow(2).sum(-1, keepdim=True)).pow(gamma)


def _adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def adaptive_avgpool_bound(input_size: int | Sequence[int],
                           output_size: int | Sequence[int]) -> float:
    """Operator-norm bound of ``nn.AdaptiveAvgPool2d``: ``sqrt(prod max_count / min_window)``.

    Each output is a window mean, so ``(mean_W x)^2 <= ||x_W||^2 / |W|``; summing over windows
    counts a pixel once per window holding it. Exact when windows tile the input (1/k per axis
    for k-pixel windows; 1 for the identity, as in torchvision's AlexNet at 224x224).
    """
    hw, oo = _pair(input_size, "input_size"), _pair(output_size, "output_size")
    if min(hw) < 1 or min(oo) < 1:
        raise ValueError(f"input_size and output_size must be positive, got {hw}, {oo}")
    total = 1.0
    for h, o in zip(hw, oo):
        wins = _adaptive_windows(h, o)
        count = max(sum(a <= i < b for a, b in wins) for i in range(h))
        total *= count / min(b - a for a, b in wins)
    return math.sqrt(total)


# --------------------------------------------------------------------------------------------
# Power iteration on the real linear map


def power_iteration(layer_linear_map: Callable[[torch.Tensor], torch.Tensor],
                    input_shape: Sequence[int], *, iters: int = 500, tol: float = 1e-10,
                    seed: int = 0, dtype: torch.dtype = torch.float64) -> float:
    """The operator norm of a linear map, by power iteration on ``M^T M`` through autograd.

    ``M^T u`` is the gradient of ``<M v, u>`` with respect to v, so any linear map torch can
    differentiate (a convolution at its real input shape, with its real padding and stride) is
    measured as it is, with no formula. Each iterate ``||M v||`` (``||v|| = 1``) is a lower
    bound on the norm that grows to it; iteration stops when it changes by less than ``tol``
    relative, or after ``iters`` steps.

    Args:
        layer_linear_map: a linear function of one tensor (no bias), e.g. ``linear_map(layer)``.
        input_shape: the shape it takes, batch dimension included, e.g. ``(1, 3, 224, 224)``.
        iters, tol: stopping rule.
        seed: seeds the random start.
        dtype: of the iterate (float64 by default, so 1e-6 agreement is meaningful).

    Returns:
        The largest ``||M v|| / ||v||`` seen: a lower bound on ``||M||``, within ``tol`` of it
        once converged.
    """
    shape = tuple(int(s) for s in input_shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"input_shape must be a non-empty shape of positive sizes, got "
                         f"{input_shape!r}")
    checks.positive_int("iters", iters)
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(shape, generator=gen, dtype=dtype)
    v = v / v.norm()
    best = 0.0
    for _ in range(iters):
        v.requires_grad_(True)
        y = layer_linear_map(v)
        (g,) = torch.autograd.grad(y, v, grad_outputs=y.detach())
        sigma = float(y.detach().norm())
        if sigma == 0.0 or float(g.norm()) == 0.0:
            return max(best, sigma)
        done = sigma - best <= tol * sigma
        best = max(best, sigma)
        if done:
            break
        v = (g / g.norm()).detach()
    return best


def linear_map(layer: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The bias-free linear map of a layer, in float64, for ``power_iteration``.

    Supports ``nn.Linear``, ``nn.Conv2d`` (zero or circular padding), ``nn.AdaptiveAvgPool2d``
    and the shape-only layers (``nn.Flatten``, ``nn.Dropout`` in eval mode, ``nn.Identity``).
    """
    if isinstance(layer, nn.Linear):
        w = layer.weight.detach().to("cpu", torch.float64)
        return lambda x: F.linear(x, w)
    if isinstance(layer, nn.Conv2d):
        w = layer.weight.detach().to("cpu", torch.float64)
        if layer.padding_mode == "zeros":
            return lambda x: F.conv2d(x, w, None, layer.stride, layer.padding, layer.dilation,
                                      layer.groups)
        if layer.padding_mode == "circular":
            pad = layer._reversed_padding_repeated_twice
            return lambda x: F.conv2d(F.pad(x, pad, mode="circular"), w, None, layer.stride, 0,
                                      layer.dilation, layer.groups)
        raise ValueError(f"layer must use zero or circular padding, got "
                         f"padding_mode={layer.padding_mode!r}")
    if isinstance(layer, (nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Identity)):
        if isinstance(layer, nn.Dropout) and layer.training:
            raise ValueError("layer must be in eval mode (dropout is random while training)")
        return layer
    raise ValueError(f"layer must be a linear layer (Linear, Conv2d, AdaptiveAvgPool2d, Flatten, "
                     f"Dropout, Identity), got {type(layer).__name__}")


# --------------------------------------------------------------------------------------------
# Walking a network


@dataclass(frozen=True)
class LayerBound:
    """One layer's upper Lipschitz bound.

    Attributes:
        name: the module's qualified name (``body.fc1``, ``features.0``).
        kind: "linear", "conv", "sigmoid", "relu", "tanh", "maxpool", "avgpool" or "reshape".
        input_shape, output_shape: per image (no batch dimension).
        size: the paper's notation: "in x out" for linear layers, "C x k x k x D" for
            convolutions, "" otherwise.
        stride: the convolution's (or pooling's) stride, None for other layers.
        bound: the upper bound on the layer's Lipschitz constant.
        method: how it was computed ("svd", "fourier", "constant", "window count").
        exact: whether ``bound`` equals the layer's Lipschitz constant at this input shape.
        power_iteration: the power-iteration value of a linear layer, when validated.
    """

    name: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    size: str
    stride: int | tuple[int, int] | None
    bound: float
    method: str
    exact: bool
    power_iteration: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


_CONSTANTS: dict[type, tuple[str, float]] = {
    nn.Sigmoid: ("sigmoid", SIGMOID_BOUND), nn.ReLU: ("relu", 1.0), nn.Tanh: ("tanh", 1.0),
    nn.Flatten: ("reshape", 1.0), nn.Identity: ("reshape", 1.0), nn.Dropout: ("reshape", 1.0),
}


def _squeeze(v: tuple[int, ...]) -> int | tuple[int, ...]:
    return v[0] if len(set(v)) == 1 else v


def layer_bound(name: str, layer: nn.Module, input_shape: Sequence[int],
                output_shape: Sequence[int]) -> LayerBound:
    """The bound of one layer at its input shape (per image, e.g. ``(1, 28, 28)``).

    Raises:
        ValueError: a layer this module has no bound for (the message lists the supported ones).
    """
    ins, outs = tuple(int(v) for v in input_shape), tuple(int(v) for v in output_shape)
    if isinstance(layer, nn.Linear):
        size = f"{layer.in_features}x{layer.out_features}"
        return LayerBound(name, "linear", ins, outs, size, None, linear_bound(layer.weight),
                          "svd", True)
    if isinstance(layer, nn.Conv2d):
        if layer.dilation != (1, 1):
            raise ValueError(f"{name}: dilated convolutions are not supported")
        if layer.padding_mode not in ("zeros", "circular"):
            raise ValueError(f"{name}: padding_mode must be 'zeros' or 'circular', got "
                             f"{layer.padding_mode!r}")
        k1, k2 = layer.kernel_size
        if isinstance(layer.padding, str):  # "same" (stride 1) or "valid"
            pad = ((k1 - 1) // 2, (k2 - 1) // 2) if layer.padding == "same" else (0, 0)
            if layer.padding == "same" and (k1 % 2 == 0 or k2 % 2 == 0):
                raise ValueError(f"{name}: padding='same' with an even kernel is not supported")
        else:
            pad = tuple(layer.padding)
        circular = layer.padding_mode == "circular"
        bound = conv_bound(layer.weight, input_size=ins[1:], stride=layer.stride, padding=pad,
                           groups=layer.groups, circular=circular)
        exact = circular and all(2 * p == k - 1 for p, k in zip(pad, layer.kernel_size))
        size = f"{layer.in_channels}x{k1}x{k2}x{layer.out_channels}"
        return LayerBound(name, "conv", ins, outs, size, _squeeze(tuple(layer.stride)), bound,
                          "fourier", exact)
    if isinstance(layer, nn.MaxPool2d):
        if layer.dilation not in (1, (1, 1)):
            raise ValueError(f"{name}: dilated max-pooling is not supported")
        ks, st = _pair(layer.kernel_size, "kernel_size"), _pair(layer.stride, "stride")
        bound = maxpool_bound(ks, st)
        return LayerBound(name, "maxpool", ins, outs, "", _squeeze(st), bound, "window count",
                          bound == 1.0)
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        bound = adaptive_avgpool_bound(ins[1:], outs[1:])
        tiles = all(h % o == 0 for h, o in zip(ins[1:], outs[1:]))
        return LayerBound(name, "avgpool", ins, outs, "", None, bound, "window count", tiles)
    if isinstance(layer, nn.LeakyReLU):
        return LayerBound(name, "relu", ins, outs, "", None,
                          max(1.0, abs(layer.negative_slope)), "constant", True)
    for cls, (kind, value) in _CONSTANTS.items():
        if isinstance(layer, cls):
            return LayerBound(name, kind, ins, outs, "", None, value, "constant", True)
    raise ValueError(f"{name}: no Lipschitz bound for {type(layer).__name__}; supported: Linear, "
                     f"Conv2d, MaxPool2d, AdaptiveAvgPool2d, Sigmoid, ReLU, LeakyReLU, Tanh, "
                     f"Flatten, Dropout, Identity")


def trace(model: nn.Module, input_shape: Sequence[int], *, seed: int = 0
          ) -> list[tuple[str, nn.Module, tuple[int, ...], tuple[int, ...]]]:
    """The leaf layers a forward pass runs, in order, with their input and output shapes.

    The model must be a chain: each layer takes exactly the previous layer's output, up to a
    reshape (torchvision's AlexNet flattens between ``avgpool`` and ``classifier``), and the
    model returns the last layer's output. This is checked on a random input, value by value,
    so a residual connection or a functional nonlinearity between layers raises ValueError.

    Args:
        model: in eval mode.
        input_shape: one input without the batch dimension, e.g. ``(1, 28, 28)``.
    """
    if model.training:
        raise ValueError("model must be in eval mode (call model.eval())")
    shape = tuple(int(v) for v in input_shape)
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    records: list = []
    hooks = [m.register_forward_hook(
        lambda mod, inp, out, n=n: records.append((n, mod, inp[0].detach(), out.detach())))
        for n, m in leaves]
    param = next(model.parameters(), None)
    x = torch.rand((1, *shape), generator=torch.Generator().manual_seed(seed))
    if param is not None:
        x = x.to(param.device, param.dtype)
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    prev = x
    for n, _, inp, outp in records:
        if inp.numel() != prev.numel() or not torch.equal(inp.flatten(), prev.flatten()):
            raise ValueError(f"model must be a chain of layers: {n!r} does not take the previous "
                             f"layer's output")
        prev = outp
    if not records or out.numel() != prev.numel() or not torch.equal(out.flatten(),
                                                                      prev.flatten()):
        raise ValueError("model must return its last layer's output")
    return [(n, m, tuple(i.shape[1:]), tuple(o.shape[1:])) for n, m, i, o in records]


def network_bounds(model: nn.Module, input_shape: Sequence[int], *, validate: bool = False,
                   iters: int = 500, tol: float = 1e-10) -> list[LayerBound]:
    """Every layer's upper Lipschitz bound, in forward order (``trace``).

    Args:
        model: a chain of supported layers (``layer_bound``), in eval mode.
        input_shape: one input without the batch dimension.
        validate: also run ``power_iteration`` on each linear layer's map at its input shape.
        iters, tol: power-iteration stopping rule.
    """
    bounds = []
    for name, layer, ins, outs in trace(model, input_shape):
        b = layer_bound(name, layer, ins, outs)
        if validate and b.kind in ("linear", "conv", "avgpool", "reshape"):
            pi = power_iteration(linear_map(layer), (1, *ins), iters=iters, tol=tol)
            b = LayerBound(**{**b.as_dict(), "power_iteration": pi})
        bounds.append(b)
    return bounds


def product_bound(bounds: Sequence[LayerBound], *, upto: str | None = None) -> float:
    """``L = prod_k L_k`` over the layers, or over those up to and including layer ``upto``."""
    if upto is not None and upto not in [b.name for b in bounds]:
        raise ValueError(f"upto must name one of the layers {[b.name for b in bounds]}, "
                         f"got {upto!r}")
    total = 1.0
    for b in bounds:
        total *= b.bound
        if b.name == upto:
            break
    return total


def hidden_product_bound(bounds: Sequence[LayerBound]) -> float | None:
    """The product bound up to the last hidden nonlinearity (sigmoid or ReLU), inclusive.

    Why: it separates what the hidden layers can stretch from the output layer's own norm.
    Returns None for a network without a hidden nonlinearity (the linear FC10 models).
    """
    hidden = [b.name for b in bounds if b.kind in ("sigmoid", "relu")]
    return product_bound(bounds, upto=hidden[-1]) if hidden else None


def product_bound_pooling_as_paper(bounds: Sequence[LayerBound]) -> float:
    """The product bound with every max-pooling layer counted as 1, as the paper's Table 5 does.

    Overlapping windows make max-pooling's constant larger than 1 (``maxpool_bound``); dividing
    ``product_bound`` by it shows what the paper's convention gives for the same layers.
    """
    return product_bound(bounds) / math.prod(b.bound for b in bounds if b.kind == "maxpool")


def paper_names(bounds: Sequence[LayerBound]) -> dict[str, str]:
    """Table 5's names for the weight layers: the i-th convolution "Conv. i", linear "FC. i"."""
    names, counts = {}, {"conv": 0, "linear": 0}
    for b in bounds:
        if b.kind in counts:
            counts[b.kind] += 1
            names[b.name] = f"{'Conv.' if b.kind == 'conv' else 'FC.'} {counts[b.kind]}"
    return names


# --------------------------------------------------------------------------------------------
# What trained networks actually do


def _batches(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def jacobian_norms(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """Local Lipschitz constants: ``||d phi / d x||_2`` at each image, phi = the model's output.

    The spectral norm of the Jacobian (outputs x pixels) bounds how much an infinitesimal
    perturbation at x is stretched; the global bound L must be at least its largest value over
    any set of points. One backward pass per output (the zoo's models: 10 logits).

    Args:
        model: in eval mode (images must not interact within a batch).
        x: ``(N, ...)`` inputs.

    Returns:
        ``(N,)`` float.
    """
    if model.training:
        raise ValueError("model must be in eval mode (call model.eval())")
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or len(x) == 0:
        raise ValueError(f"x must be a non-empty batch (N, ...), got "
                         f"{getattr(x, 'shape', type(x))}")
    out = []
    for sl in _batches(len(x), batch_size):
        xb = x[sl].detach().clone().requires_grad_(True)
        y = model(xb).flatten(1)
        rows = [torch.autograd.grad(y[:, k].sum(), xb, retain_graph=k + 1 < y.shape[1])[0]
                .flatten(1) for k in range(y.shape[1])]
        jac = torch.stack(rows, 1).double()  # (B, outputs, inputs): the small side's Gram
        gram = jac @ jac.mT if jac.shape[1] <= jac.shape[2] else jac.mT @ jac
        out.append(torch.linalg.eigvalsh(gram)[:, -1].clamp_min(0).sqrt())
    return torch.cat(out)


def perturbation_ratios(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """``||phi(x + r) - phi(x)|| / ||r||`` per image, ``r = x_adv - x`` (NaN where r = 0)."""
    if x.shape != x_adv.shape:
        raise ValueError(f"x and x_adv must have one shape, got {tuple(x.shape)} and "
                         f"{tuple(x_adv.shape)}")
    with torch.no_grad():
        num = (model(x_adv) - model(x)).flatten(1).double().norm(dim=1)
    den = (x_adv - x).flatten(1).double().norm(dim=1)
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.nan)


def certified_radius(model: nn.Module, x: torch.Tensor, lipschitz: float) -> torch.Tensor:
    """The L2 radius within which a global bound L guarantees the prediction cannot change.

    A change ``r`` moves any difference of two logits by at most ``sqrt(2) L ||r||``, so the
    prediction holds while ``||r|| < margin / (sqrt(2) L)``, margin = top logit minus the runner-up.
    A small L would make this radius large: the paper's "small bounds rule adversarial examples
    out".

    Returns:
        ``(N,)`` radii in the input's L2 norm.
    """
    checks.positive_float("lipschitz", lipschitz)
    with torch.no_grad():
        top = model(x).flatten(1).double().topk(2, dim=1).values
    return (top[:, 0] - top[:, 1]) / (math.sqrt(2) * lipschitz)


def network_measurements(model: nn.Module, lipschitz: float, x: torch.Tensor,
                         attacked: torch.Tensor, adversarial: torch.Tensor,
                         success: torch.Tensor) -> dict[str, float | int | None]:
    """What a network really does beside its product bound L, as plain numbers.

    Why: the bound is a worst case over every input and direction; these measurements say how
    much the trained network stretches perturbations on real images and at its adversarial
    examples, and how far the radius L certifies is from the perturbations an attack needs.

    Args:
        model: in eval mode, on the CPU with the images.
        lipschitz: the network's product bound L (``product_bound``).
        x: ``(N, ...)`` images for the local constants (the test images).
        attacked: ``(M, ...)`` the images an attack was run on.
        adversarial: ``(M, ...)`` its results.
        success: ``(M,)`` bool, where the attack reached its target.

    Returns:
        ``local_median``, ``local_max`` (``jacobian_norms`` over ``x``),
        ``adversarial_ratio_median``, ``adversarial_ratio_max`` (``perturbation_ratios`` at the
        successful examples; None without any), ``bound_over_local_max`` (L over the largest
        local constant), ``certified_radius_median`` (``certified_radius`` over all attacked
        images), ``attack_norm_median`` (L2 norm of the successful perturbations; None without
        any), ``n_local`` and ``n_adversarial`` (successful examples with a nonzero
        perturbation).

    References: Szegedy et al. 2014, arXiv:1312.6199, section 4.3; the chapter "Spectral
    analysis of instability", section "Measured against the bound".
    """
    if attacked.shape != adversarial.shape or success.shape != attacked.shape[:1]:
        raise ValueError(f"attacked, adversarial and success must describe one set of images, "
                         f"got shapes {tuple(attacked.shape)}, {tuple(adversarial.shape)} and "
                         f"{tuple(success.shape)}")
    local = jacobian_norms(model, x)
    x0, xa = attacked[success], adversarial[success]
    ratio = perturbation_ratios(model, x0, xa)
    ratio = ratio[~ratio.isnan()]
    found = (xa - x0).flatten(1).norm(dim=1)
    radius = certified_radius(model, attacked, lipschitz)
    return {"local_median": local.median().item(), "local_max": local.max().item(),
            "adversarial_ratio_median": ratio.median().item() if len(ratio) else None,
            "adversarial_ratio_max": ratio.max().item() if len(ratio) else None,
            "bound_over_local_max": lipschitz / local.max().item(),
            "certified_radius_median": radius.median().item(),
            "attack_norm_median": found.median().item() if len(found) else None,
            "n_local": len(x), "n_adversarial": len(ratio)}


# --------------------------------------------------------------------------------------------
# AlexNet (Table 5)

#: torchvision's AlexNet input, as the paper's Table 5 assumes (one 224x224 RGB image).
ALEXNET_INPUT = (3, 224, 224)


def alexnet_weights_path() -> Path | None:
    """torchvision's pretrained AlexNet weights if already in the local torch cache, else None.

    Looks for ``alexnet-owt-*.pth`` in ``torch.hub.get_dir()/checkpoints``; never downloads.
    To put them there (about 233 MB, from download.pytorch.org):
    ``python -c "import torchvision; torchvision.models.alexnet(weights='IMAGENET1K_V1')"``.
    """
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    found = sorted(folder.glob("alexnet-owt-*.pth")) if folder.is_dir() else []
    return found[0] if found else None


def load_alexnet(*, pretrained: bool, seed: int = 0) -> nn.Module:
    """torchvision's AlexNet in eval mode: the cached pretrained weights, or random ones.

    torchvision's AlexNet follows Krizhevsky (2014), not the paper's Krizhevsky et al. (2012):
    64, 192, 384, 256, 256 convolution channels instead of 96, 256, 384, 384, 256, no local
    response normalisation, no grouped convolutions. The layer sizes of Table 5 differ
    accordingly; the strides (4, then 1) and the fully connected sizes are the same.

    Args:
        pretrained: load ``alexnet_weights_path()`` (ValueError if it is missing: this function
            never downloads).
        seed: seeds torchvision's random initialisation when ``pretrained`` is False.
    """
    import torchvision

    torch.manual_seed(seed)
    net = torchvision.models.alexnet(weights=None)
    if pretrained:
        path = alexnet_weights_path()
        if path is None:
            raise ValueError("pretrained AlexNet weights are not in the torch cache "
                             f"({Path(torch.hub.get_dir()) / 'checkpoints'}); see "
                             "alexnet_weights_path() for how to fetch them")
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


#: Bump when a change here alters what ``alexnet_bounds`` computes.
CACHE_VERSION = 1


def _weights_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def alexnet_bounds(*, pretrained: bool, iters: int = 100, tol: float = 1e-6,
                   seed: int = 0) -> list[LayerBound]:
    """``network_bounds`` of torchvision's AlexNet at 224x224, validated, cached on disk.

    AlexNet's bounds take a minute on two CPU cores (most of it in the 4096x9216 layer's
    singular value and the convolutions' Fourier matrices) and its power iterations as long
    again, so the layers are cached as JSON under ``data/models``, keyed by a hash of the
    weights and the settings.

    Args:
        pretrained: the cached torchvision weights (``load_alexnet``) or random ones.
        iters, tol: power-iteration stopping rule for the linear layers (a lower bound when it
            stops early).
        seed: the random weights' seed.
    """
    from ..plumbing import cache, config, files

    net = load_alexnet(pretrained=pretrained, seed=seed)
    payload = {"weights": _weights_digest(net), "iters": iters, "tol": tol,
               "input": list(ALEXNET_INPUT), "version": CACHE_VERSION}
    key = cache.key(payload)
    kind = "pretrained" if pretrained else "random"
    path = config.models_dir() / f"alexnet-bounds-{kind}-{key}.json"
    if path.exists():
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
            return [LayerBound(**{**r, "input_shape": tuple(r["input_shape"]),
                                  "output_shape": tuple(r["output_shape"]),
                                  "stride": tuple(r["stride"]) if isinstance(r["stride"], list)
                                  else r["stride"]}) for r in rows]
        except (ValueError, KeyError, TypeError) as exc:  # unreadable: recompute
            warnings.warn(f"AlexNet bounds cache {path} is unreadable ({exc}); recomputing",
                          stacklevel=2)
    bounds = network_bounds(net, ALEXNET_INPUT, validate=True, iters=iters, tol=tol)
    files.atomic_write_json(path, [b.as_dict() for b in bounds])
    return bounds
