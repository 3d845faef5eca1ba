"""The paper's MNIST architectures and its weight decay.

Why: Table 1 of Szegedy et al. (2014) compares linear softmax classifiers (FC10), sigmoid
multilayer perceptrons (FC100-100-10, FC200-200-10, FC123-456-10) and a softmax on the features of
a frozen sparse autoencoder (AE400-10); Property 1 was shown on a convolutional net. Every model
here takes pixels in [0,1] of shape ``(N, 1, 28, 28)`` and returns logits ``(N, 10)``: the box
constraint of the attack is stated in pixel space, so no normalisation happens outside the model.

Weight decay follows the paper (section 4.3): each layer adds ``lambda * sum(w^2) / k`` with
``k`` the number of units in the layer (its output width); biases are not decayed.

References: Szegedy et al. 2014, arXiv:1312.6199, section 4.3 and Table 1.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

IMAGE_SHAPE = (1, 28, 28)
N_PIXELS = 28 * 28
N_CLASSES = 10


class DecayedNet(nn.Module):
    """A classifier whose layers carry the paper's per-layer weight-decay constants.

    Subclasses fill ``self.body`` (an ``nn.Sequential`` with named layers, so that
    ``intriguing.engine.units`` can hook any of them by name) and ``self.decay``, a list of
    ``(layer name, lambda)`` pairs.
    """

    body: nn.Sequential
    decay: list[tuple[str, float]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, 10)`` for pixels ``(N, 1, 28, 28)`` in [0,1]."""
        return self.body(x)

    def weight_decay(self) -> torch.Tensor:
        """The paper's penalty: sum over decayed layers of ``lambda * sum(w^2) / k``.

        ``k`` is the layer's number of units (output features or output channels).
        """
        layers = dict(self.body.named_children())
        total = torch.zeros((), device=next(self.parameters()).device)
        for name, lam in self.decay:
            w = layers[name].weight
            total = total + lam * w.pow(2).sum() / w.shape[0]
        return total

    def layer_names(self) -> list[str]:
        """Names of the layers in ``body``, in order (for activation hooks)."""
        return [name for name, _ in self.body.named_children()]


def _check_lambdas(lambdas: Sequence[float], n: int) -> tuple[float, ...]:
    lambdas = tuple(float(v) for v in lambdas)
    if len(lambdas) != n:
        raise ValueError(f"lambdas must hold {n} values (one per layer), got {len(lambdas)}")
    if any(not v >= 0 for v in lambdas):
        raise ValueError(f"lambdas must be non-negative numbers, got {lambdas}")
    return lambdas


class Softmax(DecayedNet):
    """FC10(lambda): a linear softmax classifier on the raw pixels (Table 1's first rows)."""

    def __init__(self, lam: float):
        super().__init__()
        (lam,) = _check_lambdas([lam], 1)
        self.body = nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc=nn.Linear(N_PIXELS, 10)))
        self.decay = [("fc", lam)]


class SigmoidMLP(DecayedNet):
    """FC<h1>-<h2>-10: fully connected sigmoid hidden layers and a softmax output.

    Layer names: ``fc1``, ``act1``, ``fc2``, ``act2``, ..., ``out``; ``act<i>`` holds the
    hidden representation phi(x) of layer i (the units of Property 1).
    """

    def __init__(self, hidden: Sequence[int], lambdas: Sequence[float]):
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        if not hidden or any(h <= 0 for h in hidden):
            raise ValueError(
                f"hidden must be a non-empty sequence of positive widths, got {hidden}")
        lambdas = _check_lambdas(lambdas, len(hidden) + 1)
        layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
        width = N_PIXELS
        for i, h in enumerate(hidden, start=1):
            layers += [(f"fc{i}", nn.Linear(width, h)), (f"act{i}", nn.Sigmoid())]
            width = h
        layers.append(("out", nn.Linear(width, N_CLASSES)))
        self.body = nn.Sequential(OrderedDict(layers))
        self.decay = [(f"fc{i}", lam) for i, lam in enumerate(lambdas[:-1], start=1)]
        self.decay.append(("out", lambdas[-1]))


class DropoutMLP(SigmoidMLP):
    """FC<h1>-<h2>-10 with dropout on the input and on each hidden layer's output.

    Why: section 4.2 of the paper compares adversarial training with "carefully applied dropout"
    (about 1.3% test error for a 100-100-10 network) without saying where or at what rate. The
    layers, names and initialisation are :class:`SigmoidMLP`'s (the same seed gives the same
    weights, and the state dicts are interchangeable); ``drop0`` follows ``flatten`` and
    ``drop<i>`` follows ``act<i>``. In eval mode dropout is the identity (inverted dropout scales
    at training time), so the trained weights run as a plain :class:`SigmoidMLP`.

    References: Szegedy et al. 2014, arXiv:1312.6199, section 4.2; Srivastava et al. 2014
    (dropout).
    """

    def __init__(self, hidden: Sequence[int], lambdas: Sequence[float],
                 dropout: Sequence[float]):
        super().__init__(hidden, lambdas)
        rates = tuple(dropout)
        if len(rates) != 2 or any(isinstance(p, bool) or not isinstance(p, (int, float))
                                  or not 0 <= p < 1 for p in rates):
            raise ValueError(f"dropout must be two rates in [0, 1) (input, hidden), got {dropout}")
        p_in, p_hidden = (float(p) for p in rates)
        layers: list[tuple[str, nn.Module]] = []
        for name, module in self.body.named_children():
            layers.append((name, module))
            if name == "flatten" and p_in > 0:
                layers.append(("drop0", nn.Dropout(p_in)))
            elif name.startswith("act") and p_hidden > 0:
                layers.append((f"drop{name[3:]}", nn.Dropout(p_hidden)))
        self.body = nn.Sequential(OrderedDict(layers))


class SparseAutoencoder(nn.Module):
    """A single-layer sigmoid autoencoder, trained on pixels with a sparsity penalty.

    The paper's AE400-10 uses 400 such units, "not fine-tuned" (Table 1). The decoder is sigmoid
    too, so reconstructions live in [0,1] like the pixels.
    """

    def __init__(self, units: int = 400):
        super().__init__()
        if units <= 0:
            raise ValueError(f"units must be positive, got {units}")
        self.encoder = nn.Sequential(
            OrderedDict(flatten=nn.Flatten(), fc=nn.Linear(N_PIXELS, units), act=nn.Sigmoid())
        )
        self.decoder = nn.Linear(units, N_PIXELS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(hidden (N, units), reconstruction (N, 784))``."""
        h = self.encoder(x)
        return h, torch.sigmoid(self.decoder(h))


class AutoencoderSoftmax(DecayedNet):
    """AE400-10: the frozen encoder of a sparse autoencoder with a softmax on top.

    Layer names: ``flatten``, ``enc``, ``act`` (the 400 autoencoder units), ``out``. Only ``out``
    is trained (lambda on it, 1e-6 in the paper); the encoder's parameters do not require grad.
    """

    def __init__(self, units: int = 400, lam: float = 1e-6):
        super().__init__()
        (lam,) = _check_lambdas([lam], 1)
        self.body = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),
                enc=nn.Linear(N_PIXELS, units),
                act=nn.Sigmoid(),
                out=nn.Linear(units, N_CLASSES),
            )
        )
        self.decay = [("out", lam)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 400 autoencoder units ``(N, 400)`` for pixels ``(N, 1, 28, 28)``."""
        return self.body.act(self.body.enc(self.body.flatten(x)))

    def load_encoder(self, autoencoder: SparseAutoencoder) -> None:
        """Copy a trained autoencoder's encoder in and freeze it."""
        self.body.enc.load_state_dict(autoencoder.encoder.fc.state_dict())
        for p in self.body.enc.parameters():
            p.requires_grad_(False)


class SoftmaxHead(DecayedNet):
    """A softmax layer on precomputed features, sharing its ``nn.Linear`` with a bigger model.

    Used to fit AE400-10's top layer on features encoded once (the encoder is frozen).
    """

    def __init__(self, out: nn.Linear, lam: float):
        super().__init__()
        (lam,) = _check_lambdas([lam], 1)
        self.body = nn.Sequential(OrderedDict(out=out))
        self.decay = [("out", lam)]


class ConvNet(DecayedNet):
    """A small convolutional net for Property 1 (the paper used "a convolutional network" on MNIST).

    The paper does not describe it; ours is two 5x5 ReLU convolutions with 2x2 max-pooling
    (16 and 32 channels, small enough to train in minutes on two CPU cores) and a 128-unit ReLU
    feature layer ``feat`` (the layer Figures 1-2 probe), then the softmax layer ``out``.
    """

    def __init__(self, lambdas: Sequence[float] = (1e-5, 1e-5, 1e-5, 1e-6)):
        super().__init__()
        lambdas = _check_lambdas(lambdas, 4)
        self.body = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(1, 16, 5, padding=2),
                relu1=nn.ReLU(),
                pool1=nn.MaxPool2d(2),
                conv2=nn.Conv2d(16, 32, 5, padding=2),
                relu2=nn.ReLU(),
                pool2=nn.MaxPool2d(2),
                flatten=nn.Flatten(),
                fc=nn.Linear(32 * 7 * 7, 128),
                feat=nn.ReLU(),
                out=nn.Linear(128, N_CLASSES),
            )
        )
        self.decay = list(zip(["conv1", "conv2", "fc", "out"], lambdas, strict=True))
