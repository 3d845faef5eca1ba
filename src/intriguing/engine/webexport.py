"""The browser engine's Python side: export models and test images for it, run it under Node.js.

Why: the rendered book runs the paper's attack in the reader's browser with a small JavaScript
engine (``book/_extra/js/intriguing-attack.js``, served at ``_build/html/js/``), a port of
:func:`intriguing.engine.attacks.lbfgs` for one image at a time. It needs the trained weights
and some test images in a form a page opened from disk can load: a ``<script>`` that assigns to
a global, since browsers block ``fetch`` of other ``file://`` URLs. This module writes those
scripts (weights as base64 of little-endian float32, or float16; pixels as uint8), and runs the
engine under ``node`` on exported data, which is how the tests check it against the Python
engine and how ``python -m intriguing bench browser-engine`` times it.

Every Table 1 model is a stack of dense layers with sigmoids between them: FC10 is one layer,
FC100-100-10 and FC200-200-10 three, AE400-10 two (its frozen encoder ``enc`` with the sigmoid
``act``, then the softmax layer ``out``). :func:`dense_layers` reads any such ``nn.Sequential``;
the ConvNet is not exported.

Layout written by :func:`export` under ``out`` (``book/_web/html/attack-data`` by default,
which the book's ``html_extra_path`` copies to ``_build/html/attack-data``)::

    index.js         IntriguingAttackData.index: the models, files, sizes and attack settings
    images.js        IntriguingAttackData.images: the first test images (uint8) and labels
    <model>.js       IntriguingAttackData.models[name]: one model's layer sizes and weights
    <model>.f16.js   IntriguingAttackData.predictors[name]: the same model in float16, which
                     the transfer table uses to predict (never to attack); the index records
                     how often it gives the float32 model's class (:func:`predictor_agreement`)
    manifest.json    the same index, for Python

References:
    Szegedy et al. 2014, "Intriguing properties of neural networks", arXiv:1312.6199, section
    4.1 (the attack) and Table 1 (the models). The offline-book notes explain why scripts, not
    fetched binaries.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..plumbing import checks, config, files
from . import attacks, data, zoo

__all__ = [
    "DTYPES",
    "dense_layers",
    "engine_path",
    "export",
    "images_entry",
    "model_entry",
    "node_executable",
    "predictor_agreement",
    "predictor_file",
    "run_node",
    "supported",
    "write_script",
]

FORMAT = 1
#: Weight encodings: numpy dtype (little-endian) per name.
DTYPES = {"float32": "<f4", "float16": "<f2"}
GLOBAL = "IntriguingAttackData"
#: Where ``make book`` puts the exported files: under the git-ignored folder whose ``html/`` the
#: book's ``html_extra_path`` copies to the site root.
DEFAULT_OUT = Path("book/_web/html/attack-data")
#: The first test images shipped (the issue asks for at least 500).
DEFAULT_IMAGES = 500
_RUNNER = Path(__file__).with_name("webexport_node.js")
#: The transfer table's copies of the models (section 4.3: every model's answer to an
#: adversarial image) only predict, so they ship at half the bytes.
PREDICTOR_DTYPE = "float16"
#: Adversarial examples per Table 1 model on which the float16 copies are checked.
AGREEMENT_PER_SET = 2000


def engine_path() -> Path:
    """The browser engine's source: ``book/_extra/js/intriguing-attack.js`` in the checkout."""
    return config.repo_root() / "book" / "_extra" / "js" / "intriguing-attack.js"


def dense_layers(model: nn.Module) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``(weight (out, in), bias (out,))`` float32 arrays of a stack of dense layers.

    Why: the browser engine runs exactly one kind of network, ``Linear`` layers with a sigmoid
    after every layer but the last (the logits), with an optional ``Flatten`` first; that is
    every Table 1 model. ``Dropout`` layers (the identity in eval mode) are skipped. Anything
    else is refused rather than exported wrongly.

    Args:
        model: a zoo model (its ``body``) or an ``nn.Sequential`` of such layers.

    Returns:
        One ``(W, b)`` pair per ``Linear`` layer, input side first, as float32 numpy arrays.

    Raises:
        ValueError: naming ``model`` when it is not such a stack (e.g. the ConvNet) or not in
            eval mode.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    body = getattr(model, "body", model)
    if not isinstance(body, nn.Sequential):
        raise ValueError(f"model must be an nn.Sequential (or hold one as .body), got "
                         f"{type(body).__name__}")
    if any(m.training for m in body.modules()):
        raise ValueError("model must be in eval mode (call model.eval()): the engine runs the "
                         "eval-mode network (dropout is the identity there)")
    kept = [m for m in body if not isinstance(m, nn.Dropout)]  # identity in eval mode
    kinds = [type(m).__name__ for m in kept]
    pattern = "(Flatten,)?Linear(,Sigmoid,Linear)*"
    if not re.fullmatch(pattern, ",".join(kinds)):
        raise ValueError(f"model must be Linear layers with a Sigmoid between each two (and an "
                         f"optional Flatten first), got {kinds}")
    layers = []
    for m in kept:
        if isinstance(m, nn.Linear):
            w = m.weight.detach().to("cpu", torch.float32).numpy()
            b = (m.bias.detach().to("cpu", torch.float32).numpy() if m.bias is not None
                 else np.zeros(m.out_features, np.float32))
            layers.append((w, b))
    for (w1, _), (w2, _) in zip(layers, layers[1:]):
        if w2.shape[1] != w1.shape[0]:
            raise ValueError(f"model's layers do not chain: {w1.shape} then {w2.shape}")
    return layers


def supported(model: nn.Module) -> bool:
    """Whether :func:`dense_layers` can export ``model``."""
    try:
        dense_layers(model)
    except ValueError:
        return False
    return True


def _b64(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def model_entry(model: nn.Module, name: str, *, dtype: str = "float32") -> dict:
    """The JSON-able description of a model that the engine's ``decodeModel`` reads.

    Args:
        model: a stack of dense layers (see :func:`dense_layers`), e.g. ``zoo.load(name)``.
        name: the model's name (a zoo name).
        dtype: "float32" (exact) or "float16" (half the bytes; weights rounded).

    Returns:
        ``{"name", "arch", "sizes": [784, ..., 10], "activation": "sigmoid", "dtype",
        "weights": [base64, ...], "biases": [base64, ...]}``.

    Raises:
        ValueError: naming ``model`` (not exportable), ``name`` or ``dtype``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    checks.one_of("dtype", dtype, list(DTYPES))
    layers = dense_layers(model)
    arch = zoo.SPECS[name].arch if name in zoo.SPECS else ""
    return {
        "name": name,
        "arch": arch,
        "sizes": [int(layers[0][0].shape[1])] + [int(w.shape[0]) for w, _ in layers],
        "activation": "sigmoid",
        "dtype": dtype,
        "weights": [_b64(w, DTYPES[dtype]) for w, _ in layers],
        "biases": [_b64(b, DTYPES[dtype]) for _, b in layers],
    }


def predictor_file(name: str) -> str:
    """The script of ``name``'s float16 copy: ``<slug>.f16.js``."""
    return f"{_slug(name)}.f16.js"


def _logits64(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    """The logits of a dense sigmoid stack in float64, as the browser engine computes them."""
    h = x.reshape(len(x), -1).astype(np.float64)
    for i, (w, b) in enumerate(layers):
        h = h @ w.astype(np.float64).T + b.astype(np.float64)
        if i < len(layers) - 1:
            h = 1.0 / (1.0 + np.exp(-h))
    return h


def predictor_agreement(model: nn.Module, inputs: torch.Tensor, *,
                        dtype: str = PREDICTOR_DTYPE) -> dict:
    """How often ``model`` with its weights rounded to ``dtype`` predicts the class that it
    predicts with its own (float32) weights, on ``inputs``.

    Why: the transfer table of "Transferability" shows every zoo model's class for an
    adversarial image (section 4.3) from copies at half the bytes; this is the measured cost of
    that rounding, which the page states beside the table.

    Args:
        model: a stack of dense layers (see :func:`dense_layers`).
        inputs: images ``(N, ...)`` with 784 values each, inside [0, 1].
        dtype: a name of :data:`DTYPES`.

    Returns:
        ``{"dtype", "inputs": N, "agree": count, "max_logit_error": largest |logit change|}``.

    Raises:
        ValueError: naming ``inputs`` or ``dtype``.
    """
    checks.one_of("dtype", dtype, list(DTYPES))
    if not isinstance(inputs, torch.Tensor) or inputs.ndim < 2 or len(inputs) == 0 \
            or inputs[0].numel() != 784:
        raise ValueError("inputs must be a non-empty tensor of images with 784 values each, got "
                         f"{getattr(inputs, 'shape', type(inputs).__name__)}")
    layers = dense_layers(model)
    rounded = [(w.astype(DTYPES[dtype]), b.astype(DTYPES[dtype])) for w, b in layers]
    x = inputs.detach().cpu().double().numpy()
    exact, near = _logits64(layers, x), _logits64(rounded, x)
    return {"dtype": dtype, "inputs": int(len(x)),
            "agree": int((exact.argmax(1) == near.argmax(1)).sum()),
            "max_logit_error": float(np.abs(exact - near).max())}


def images_entry(images: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
    """The JSON-able description of images that the engine's ``decodeImages`` reads.

    Args:
        images: ``(N, 1, 28, 28)`` (any ``(N, H, W)``-like shape) in ``[0, 1]``; stored as
            uint8 ``round(255 x)``, which is exact for MNIST (its pixels are uint8 / 255).
        labels: ``(N,)`` integer labels in 0..255, or None.

    Raises:
        ValueError: naming ``images`` or ``labels``.
    """
    if not isinstance(images, torch.Tensor) or images.ndim < 3 or not images.is_floating_point():
        raise ValueError("images must be a float tensor (N, 1, H, W) or (N, H, W)")
    if images.numel() and (float(images.min()) < 0 or float(images.max()) > 1):
        raise ValueError("images must lie in [0, 1]")
    n, h, w = len(images), images.shape[-2], images.shape[-1]
    if images[0].numel() != h * w:
        raise ValueError(f"images must have one channel, got shape {tuple(images.shape)}")
    pixels = (images.detach().double() * 255).round().to(torch.uint8).reshape(n, h * w)
    entry = {"n": n, "height": int(h), "width": int(w), "pixels": _b64(pixels.numpy(), "u1")}
    if labels is not None:
        if not isinstance(labels, torch.Tensor) or labels.shape != (n,):
            raise ValueError(f"labels must be a tensor of shape ({n},)")
        if n and (int(labels.min()) < 0 or int(labels.max()) > 255):
            raise ValueError("labels must be integers in 0..255")
        entry["labels"] = _b64(labels.numpy().astype(np.uint8), "u1")
    return entry


def write_script(path: str | Path, key: str, value: object, *, comment: str = "") -> int:
    """Write a script that stores ``value`` at ``IntriguingAttackData.<key>``; returns its bytes.

    ``key`` is ``"index"``, ``"images"``, ``"models.<name>"`` or ``"predictors.<name>"``. The
    script works as a plain ``<script src>`` (also from ``file://``) and under node's
    ``require``.
    """
    field, _, name = key.partition(".")
    if not (key in ("index", "images") or (field in ("models", "predictors") and name)):
        raise ValueError("key must be 'index', 'images', 'models.<name>' or "
                         f"'predictors.<name>', got {key!r}")
    target = f"d.{field}[{json.dumps(name)}]" if name else f"d.{field}"
    text = (
        f"/* {comment or 'written by python -m intriguing export-web'} */\n"
        "(function (g) {\n"
        f"  var d = g.{GLOBAL} = g.{GLOBAL} || {{models: {{}}}};"
        + (f" d.{field} = d.{field} || {{}};\n" if field == "predictors" else "\n")
        + f"  {target} = {json.dumps(value, separators=(',', ':'))};\n"
        '}(typeof globalThis !== "undefined" ? globalThis : self));\n'
    )
    raw = text.encode("utf-8")
    files.atomic_write_bytes(path, raw)
    return len(raw)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_")


def export(out: str | Path | None = None, *, scale: str | config.Scale | None = None,
           models: Sequence[str] | None = None, n_images: int = DEFAULT_IMAGES,
           dtype: str = "float32", predictors: bool = True,
           agreement_sets: bool = False) -> dict:
    """Write the zoo's exportable models and the first test images as scripts under ``out``.

    Why: the browser engine attacks the same trained models the chapters use, loaded from the
    same cache (``zoo.load``, which trains a model on first use), on the same test images.

    Args:
        out: the folder (default ``book/_web/html/attack-data`` in the checkout).
        scale: the models' scale (default: ``$INTRIGUING_SCALE`` or "book").
        models: zoo names (default: every zoo model the engine runs, all but the ConvNet).
        n_images: how many of the first test images to ship.
        dtype: "float32" or "float16" for the weights.
        predictors: also write each model's float16 copy for the transfer table
            (:func:`predictor_file`), with its agreement with the model on the shipped images.
        agreement_sets: also check each copy on the first :data:`AGREEMENT_PER_SET`
            successful adversarial examples of every other exported Table 1 model (the inputs
            a copy predicts in the transfer table; ``advsets.load``: cached once ``run-all``
            has run, made otherwise).

    Returns:
        The index: format, scale, dtype, each model's file, layer sizes and bytes (and its
        ``predictor``: file, bytes, dtype and agreement), the images' file and bytes, and the
        attack settings (``LBFGSSettings()``), also written as ``index.js`` and
        ``manifest.json``.

    Raises:
        ValueError: an unknown or unexportable model name, a bad ``n_images`` or ``dtype``.
    """
    sc = config.get_scale(scale)
    checks.positive_int("n_images", n_images)
    checks.one_of("dtype", dtype, list(DTYPES))
    names = list(models) if models is not None else [
        n for n in zoo.ALL if zoo.SPECS[n].arch in ("softmax", "mlp", "autoencoder")]
    for name in names:
        zoo.spec(name)
    folder = Path(out) if out is not None else config.repo_root() / DEFAULT_OUT
    folder.mkdir(parents=True, exist_ok=True)
    index: dict = {"format": FORMAT, "scale": sc.name, "dtype": dtype, "models": [],
                   "settings": attacks.LBFGSSettings().as_dict()}
    x, y = data.load_mnist("test", limit=n_images)
    sets: dict[str, torch.Tensor] = {}
    if predictors and agreement_sets:
        from . import advsets

        for source in (n for n in names if n in zoo.TABLE1):
            adv = advsets.load(source, scale=sc, progress=False)
            sets[source] = adv["adversarial"][adv["success"]][:AGREEMENT_PER_SET]
    for name in names:
        model = zoo.load(name, scale=sc, progress=False)
        entry = model_entry(model, name, dtype=dtype)
        file = f"{_slug(name)}.js"
        size = write_script(folder / file, f"models.{name}", entry,
                            comment=f"{name} at scale {sc.name}, {dtype} weights")
        record = {"name": name, "file": file, "sizes": entry["sizes"], "bytes": size}
        if predictors:
            # A copy predicts only for models other than the attacked one: its own examples,
            # made to sit on its decision boundary, are left out of its check.
            inputs = torch.cat([x, *(v for k, v in sets.items() if k != name)])
            copy = model_entry(model, name, dtype=PREDICTOR_DTYPE)
            record["predictor"] = {
                "file": predictor_file(name), "dtype": PREDICTOR_DTYPE,
                "bytes": write_script(folder / predictor_file(name), f"predictors.{name}", copy,
                                      comment=f"{name} at scale {sc.name}, {PREDICTOR_DTYPE} "
                                              "weights, for prediction only"),
                "agreement": predictor_agreement(model, inputs),
                "checked_on": {"test_images": len(x),
                               "adversarial_examples": len(inputs) - len(x)}}
        index["models"].append(record)
    size = write_script(folder / "images.js", "images", images_entry(x, y),
                        comment=f"the first {n_images} MNIST test images (uint8) and labels")
    index["images"] = {"file": "images.js", "n": n_images, "bytes": size}
    write_script(folder / "index.js", "index", index, comment="what export-web wrote")
    files.atomic_write_json(folder / "manifest.json", index)
    return index


# ----------------------------------------------------------------------------------------------
# Running the engine under node


def node_executable() -> str | None:
    """The ``node`` on the PATH, or None."""
    return shutil.which("node")


def run_node(request: dict, *, timeout: float = 600.0) -> dict:
    """Run the browser engine under node on ``request``; return its JSON answer.

    ``request`` (see ``webexport_node.js``): ``data`` (paths of scripts written by
    :func:`write_script`), ``settings`` (LBFGSSettings fields, or None for the engine's
    defaults), and ``jobs`` (each ``{"model": name, "image": index into the exported images or
    a list of pixels, "target": class, "c": number or None for the search}``) and/or ``bench``.
    The engine path is added here.

    Raises:
        ValueError: no ``node`` on the PATH.
        RuntimeError: node failed (its stderr is in the message).
    """
    node = node_executable()
    if node is None:
        raise ValueError("node must be on the PATH to run the browser engine")
    with tempfile.TemporaryDirectory(prefix="intriguing-node-") as tmp:
        req = Path(tmp) / "request.json"
        req.write_text(json.dumps({**request, "engine": str(engine_path())}))
        proc = subprocess.run([node, str(_RUNNER), str(req)], capture_output=True, text=True,
                              timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"node failed with status {proc.returncode}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)
