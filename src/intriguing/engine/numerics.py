"""Subnormal floats: flush them while the engine computes, and keep them out of saved weights.

Why: numbers below float32's smallest normal (about 1.2e-38) are "subnormal", and on many x86
CPUs (Intel's especially) every arithmetic operation that reads or produces one takes a slow
microcode path, many times slower than normal arithmetic. Sigmoid networks make them: the
backward pass through a saturated sigmoid multiplies gradients by ``s (1 - s)``, which
underflows into the subnormal range, and weight decay drives unused weights there (AE400-10's
encoder held about 17,000 of them). Measured for issue 15 on 1,000 test images, one thread:
the attack on AE400-10 ran at 67 examples/s without flushing and 622 with it (FC200-200-10: 258
and 598), with the same mean distortion to 5 digits. CPUs differ: on an AMD EPYC (Zen 3),
whose subnormal arithmetic is nearly as fast as normal arithmetic, flushing changes little.
Flushing reads subnormal inputs as 0 and rounds subnormal results to 0: a change below
float32's rounding of any normal number.

torch offers a setter (:func:`torch.set_flush_denormal`, which sets or clears the x86 MXCSR
bits DAZ and FTZ together, for the calling thread only, and returns False where the CPU lacks
them) but no getter. :func:`flushes_subnormals` measures the state instead: it reads the
smallest subnormal, built from its bit pattern (no arithmetic that could itself be flushed),
times ``2**30``, whose exact result is a normal number, so only DAZ can zero it; and it
multiplies the smallest normal number by 0.3, whose result is subnormal, so only FTZ can zero
it. Either bit counts as "flushing". One-element tensors are computed on the calling thread, so
the probe sees that thread's state.

References: Intel 64 and IA-32 Architectures Software Developer's Manual, vol. 1, section
10.2.3 (the MXCSR register: flush-to-zero and denormals-are-zeros). Used by
:func:`intriguing.engine.attacks.lbfgs`, the training loops of :mod:`intriguing.engine.train`
and the model cache of :mod:`intriguing.engine.zoo`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch
from torch import Tensor

__all__ = ["flush_subnormals", "flushes_subnormals", "subnormal_mask", "without_subnormals"]

# dtype -> (integer view, exponent bits, mantissa bits)
_BITS = {
    torch.float16: (torch.int16, 0x7C00, 0x03FF),
    torch.bfloat16: (torch.int16, 0x7F80, 0x007F),
    torch.float32: (torch.int32, 0x7F800000, 0x007FFFFF),
    torch.float64: (torch.int64, 0x7FF0000000000000, 0x000FFFFFFFFFFFFF),
}


def flushes_subnormals() -> bool:
    """Whether the calling thread's CPU arithmetic flushes subnormals (DAZ or FTZ is on)."""
    smallest = torch.ones(1, dtype=torch.int32).view(torch.float32)  # 2**-149, from its bits
    daz = bool((smallest * 2.0**30)[0] == 0)
    ftz = bool((torch.full((1,), torch.finfo(torch.float32).tiny) * 0.3)[0] == 0)
    return daz or ftz


@contextlib.contextmanager
def flush_subnormals() -> Iterator[bool]:
    """Flush subnormals to zero on the calling thread inside the block; restore the state after.

    Why: see the module docstring; the attack and the training loops run inside this block.
    The setting is per thread: a thread that computes for the block (a worker of the attack)
    enters the block itself. torch's own intra-op threads (``torch.set_num_threads(k)``,
    ``k > 1``) keep the state they were started with, so with several torch threads only the
    calling thread's share of the work is flushed; the attack's one-thread workers are flushed
    completely.

    On exit, also on an exception, flushing is switched off again if it was off on entry (it is
    left on if it was on). torch sets and clears DAZ and FTZ together, so a thread on which
    other code had set only one of the two leaves the block with both set.

    Yields:
        Whether subnormals are flushed inside the block: False where the CPU cannot
        (``torch.set_flush_denormal`` returns False there) and nothing was changed.
    """
    before = flushes_subnormals()
    active = torch.set_flush_denormal(True)
    try:
        yield active or before
    finally:
        if active and not before:
            torch.set_flush_denormal(False)


def subnormal_mask(t: Tensor) -> Tensor:
    """Bool mask of the subnormal entries of a floating tensor (all False for other dtypes).

    Read from the bit pattern (exponent bits all 0, mantissa not 0), so the answer does not
    depend on whether the thread flushes subnormals (which makes ``t != 0`` False for them).
    """
    if t.dtype not in _BITS:
        return torch.zeros(t.shape, dtype=torch.bool, device=t.device)
    int_dtype, exponent, mantissa = _BITS[t.dtype]
    bits = t.contiguous().view(int_dtype)
    return ((bits & exponent) == 0) & ((bits & mantissa) != 0)


def without_subnormals(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A copy of a state dict whose subnormal float entries are 0 (other entries unchanged).

    Why: a saved model with subnormal weights slows every CPU that does not flush them. Zeroing
    them changes no output beyond float rounding: such a weight times a pixel or an activation
    in ``[0, 1]`` is below the rounding error of any normal partial sum it is added to. Tensors
    without subnormals are passed through as they are (not copied).
    """
    out = {}
    for key, value in state.items():
        if isinstance(value, Tensor) and value.is_floating_point():
            mask = subnormal_mask(value)
            if bool(mask.any()):
                value = value.masked_fill(mask, 0.0)
        out[key] = value
    return out
