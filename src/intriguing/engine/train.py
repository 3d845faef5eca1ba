"""Training loops: minibatch Adam, full-batch L-BFGS, sparse-autoencoder pre-training.

Why: the paper trained its models "until convergence" with L-BFGS and gives no epoch counts
(section 4.3). For the convex models (FC10 and the softmax on frozen autoencoder features) we do
the same: full-batch L-BFGS to a small gradient, so "converged" has a meaning. The sigmoid nets
and the ConvNet are trained with minibatch Adam and a cosine learning-rate decay for a fixed
number of epochs, stated in the zoo and the model-zoo chapter.

Every loop is deterministic under its ``torch.Generator`` on CPU, shows a tqdm progress bar, and
returns a history dict of plain floats (stored beside the weights in the model cache, so the
chapter can plot training curves without retraining). The float32 loops (Adam, autoencoder
pre-training) flush subnormal floats to zero (:func:`.numerics.flush_subnormals`): saturated
sigmoids underflow gradients into that range, where some CPUs compute many times slower, and
weight decay would leave weights there. The float64 L-BFGS loop does not need it (float64
underflows only below 2e-308).

References: Szegedy et al. 2014, arXiv:1312.6199, section 4.3.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm  # text bars: they go to stderr, which the book build removes

from .models import DecayedNet, SparseAutoencoder
from .numerics import flush_subnormals

History = dict[str, list[float]]


@torch.no_grad()
def error_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 5000) -> float:
    """Fraction of ``x`` (``(N, 1, 28, 28)``) that ``model`` misclassifies; in [0, 1]."""
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if len(x) == 0:
        raise ValueError("x must not be empty")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    wrong = 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i : i + batch_size].to(device))
        wrong += (logits.argmax(1) != y[i : i + batch_size].to(device)).sum().item()
    model.train(was_training)
    return wrong / len(x)


def _objective(model: DecayedNet, x: torch.Tensor, y: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits and the loss: mean cross-entropy plus the paper's weight decay."""
    logits = model(x)
    return logits, F.cross_entropy(logits, y) + model.weight_decay()


def optimizer_step(model: DecayedNet, opt: torch.optim.Optimizer,
                   sched: torch.optim.lr_scheduler.LRScheduler, xb: torch.Tensor,
                   yb: torch.Tensor) -> tuple[torch.Tensor, float]:
    """One minibatch step on mean cross-entropy plus the paper's weight decay (and one step of
    the learning-rate schedule); returns the batch's logits and the loss."""
    logits, loss = _objective(model, xb, yb)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    return logits, loss.item()


@flush_subnormals()
def fit_adam(
    model: DecayedNet,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 100,
    lr: float = 1e-3,
    generator: torch.Generator,
    monitor: tuple[torch.Tensor, torch.Tensor] | None = None,
    progress: bool = True,
    desc: str = "train",
) -> History:
    """Minibatch Adam with a cosine learning-rate decay to zero.

    Args:
        model: the network; trained in place, left in eval mode.
        x: training images ``(N, 1, 28, 28)`` in [0,1], on the model's device.
        y: labels ``(N,)``.
        epochs: passes over ``x``.
        batch_size: images per step.
        lr: initial Adam learning rate.
        generator: seeds the shuffling.
        monitor: an optional ``(x, y)`` set whose error is logged after each epoch (for curves
            only; nothing is selected on it).
        progress: show a tqdm bar.
        desc: the bar's label.

    Returns:
        History with per-epoch ``loss``, ``train_error`` and (with ``monitor``) ``monitor_error``.
    """
    if epochs <= 0 or batch_size <= 0 or lr <= 0:
        raise ValueError(
            f"epochs, batch_size and lr must be positive, got {epochs}, {batch_size}, {lr}")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / (epochs * steps_per_epoch)))
    )
    history: History = {"loss": [], "train_error": []}
    if monitor is not None:
        history["monitor_error"] = []
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        model.train()
        order = torch.randperm(len(x), generator=generator).to(x.device)
        total_loss, wrong = 0.0, 0
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            xb, yb = x[idx], y[idx]
            logits, loss = optimizer_step(model, opt, sched, xb, yb)
            total_loss += loss * len(idx)
            wrong += (logits.argmax(1) != yb).sum().item()
        history["loss"].append(total_loss / len(x))
        history["train_error"].append(wrong / len(x))
        postfix = {"loss": f"{history['loss'][-1]:.4f}"}
        if monitor is not None:
            history["monitor_error"].append(error_rate(model, *monitor))
            postfix["monitor_err"] = f"{history['monitor_error'][-1]:.4f}"
        bar.set_postfix(postfix)
    model.eval()
    return history


def fit_lbfgs(
    model: DecayedNet,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    iterations: int,
    monitor: tuple[torch.Tensor, torch.Tensor] | None = None,
    progress: bool = True,
    desc: str = "train",
    chunk: int = 10,
    grad_tol: float = 1e-5,
) -> History:
    """Full-batch float64 L-BFGS (strong-Wolfe line search) on a convex model, as the paper did.

    Runs until ``iterations`` L-BFGS iterations are spent or every gradient component falls
    below ``grad_tol``. The history is logged every ``chunk`` iterations.

    Returns:
        History with ``loss``, ``train_error``, ``iteration`` and (with ``monitor``)
        ``monitor_error``.
    """
    if iterations <= 0:
        raise ValueError(f"iterations must be positive, got {iterations}")
    # float64: in float32 the line search cannot resolve the last digits of the loss and
    # spends thousands of evaluations near the optimum.
    model.double()
    x = x.double()
    monitor = None if monitor is None else (monitor[0].double(), monitor[1])
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.LBFGS(
        params, lr=1, max_iter=chunk, max_eval=chunk * 4, history_size=20,
        line_search_fn="strong_wolfe", tolerance_grad=grad_tol, tolerance_change=1e-12,
    )
    model.train()

    # torch's L-BFGS evaluates the closure at the current point first in every step() call, so
    # the history of the point a chunk ended at is read off the next chunk's first evaluation
    # (no extra pass over the 60,000 images per chunk; the optimiser's path is unchanged).
    at_start: dict[str, float] = {}

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        logits, loss = _objective(model, x, y)
        loss.backward()
        if not at_start:
            at_start.update(loss=loss.item(),
                            train_error=(logits.argmax(1) != y).sum().item() / len(y))
        return loss

    history: History = {"loss": [], "train_error": [], "iteration": []}
    if monitor is not None:
        history["monitor_error"] = []

    def log(iteration: int) -> None:
        history["loss"].append(at_start["loss"])
        history["train_error"].append(at_start["train_error"])
        history["iteration"].append(float(iteration))
        if monitor is not None:
            history["monitor_error"].append(error_rate(model, *monitor))
        bar.set_postfix(loss=f"{at_start['loss']:.5f}")

    bar = tqdm(total=iterations, desc=desc, disable=not progress, leave=False)
    done = 0
    while done < iterations:
        opt.param_groups[0]["max_iter"] = min(chunk, iterations - done)
        before = opt.state[params[0]].get("n_iter", 0)
        at_start.clear()
        opt.step(closure)
        if done > 0:
            log(done)  # the point the previous chunk ended at
        taken = opt.state[params[0]].get("n_iter", 0) - before
        done += taken
        bar.update(taken)
        if taken == 0:  # converged: every gradient component <= grad_tol (or no step possible)
            break
    if taken > 0 or done == 0:
        at_start.clear()
        closure()
        log(done)
    bar.close()
    history["evaluations"] = [float(opt.state[params[0]].get("func_evals", 0))]
    model.float().eval()
    return history


@flush_subnormals()
def pretrain_autoencoder(
    ae: SparseAutoencoder,
    x: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 100,
    lr: float = 1e-3,
    sparsity: float = 0.05,
    beta: float = 1.0,
    weight_decay: float = 1e-4,
    generator: torch.Generator,
    progress: bool = True,
) -> History:
    """Train a sparse sigmoid autoencoder on pixels (the unsupervised half of AE400-10).

    Loss per batch: binary cross-entropy of the reconstruction (summed over pixels, averaged over
    images) + ``beta`` * KL(sparsity || mean hidden activation) summed over units
    + ``weight_decay`` * sum of squared weights. The paper gives no sparsity settings; these are
    ours (section 4.3 says only "single layer sparse autoencoder with sigmoid activations").

    Returns:
        History with per-epoch ``loss``, ``reconstruction`` and ``mean_activation``.
    """
    if not 0 < sparsity < 1:
        raise ValueError(f"sparsity must be in (0, 1), got {sparsity}")
    opt = torch.optim.Adam(ae.parameters(), lr=lr)
    history: History = {"loss": [], "reconstruction": [], "mean_activation": []}
    bar = tqdm(range(epochs), desc="AE400 pre-training", disable=not progress, leave=False)
    for _ in bar:
        ae.train()
        order = torch.randperm(len(x), generator=generator).to(x.device)
        tot, rec_tot, act_tot = 0.0, 0.0, 0.0
        for i in range(0, len(x), batch_size):
            xb = x[order[i : i + batch_size]].flatten(1)
            h, xr = ae(xb)
            rec = F.binary_cross_entropy(xr, xb, reduction="sum") / len(xb)
            rho_hat = h.mean(0).clamp(1e-6, 1 - 1e-6)
            kl = (sparsity * torch.log(sparsity / rho_hat)
                  + (1 - sparsity) * torch.log((1 - sparsity) / (1 - rho_hat))).sum()
            wd = ae.encoder.fc.weight.pow(2).sum() + ae.decoder.weight.pow(2).sum()
            loss = rec + beta * kl + weight_decay * wd
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += loss.item() * len(xb)
            rec_tot += rec.item() * len(xb)
            act_tot += h.mean().item() * len(xb)
        history["loss"].append(tot / len(x))
        history["reconstruction"].append(rec_tot / len(x))
        history["mean_activation"].append(act_tot / len(x))
        bar.set_postfix(rec=f"{history['reconstruction'][-1]:.2f}")
    ae.eval()
    return history
