"""Subnormal floats: the flush state is measured, set inside the block, restored after it."""

import threading

import pytest
import torch

from intriguing.engine import numerics

SUPPORTED = torch.set_flush_denormal(False)  # also leaves the test thread in the default state
needs_flush = pytest.mark.skipif(not SUPPORTED, reason="this CPU cannot flush subnormals")


def smallest_subnormal(n=1, dtype=torch.float32):
    """``n`` copies of the smallest positive subnormal, built from its bits (no arithmetic)."""
    ints = {torch.float32: torch.int32, torch.float64: torch.int64, torch.float16: torch.int16,
            torch.bfloat16: torch.int16}
    return torch.ones(n, dtype=ints[dtype]).view(dtype)


@pytest.fixture(autouse=True)
def _restore_flush():
    yield
    torch.set_flush_denormal(False)


def test_probe_reads_the_state_that_torch_sets():
    assert not numerics.flushes_subnormals()
    if SUPPORTED:
        torch.set_flush_denormal(True)
        assert numerics.flushes_subnormals()
        torch.set_flush_denormal(False)
        assert not numerics.flushes_subnormals()


@needs_flush
def test_block_flushes_and_restores_off():
    with numerics.flush_subnormals() as active:
        assert active and numerics.flushes_subnormals()
        assert float((smallest_subnormal() * 2.0**30)[0]) == 0.0  # read as 0 (DAZ)
    assert not numerics.flushes_subnormals()
    assert float((smallest_subnormal() * 2.0**30)[0]) == 2.0**-119


@needs_flush
def test_block_leaves_flushing_on_where_it_was_on():
    torch.set_flush_denormal(True)
    with numerics.flush_subnormals():
        with numerics.flush_subnormals():  # nested: the inner exit must not switch it off
            pass
        assert numerics.flushes_subnormals()
    assert numerics.flushes_subnormals()


@needs_flush
def test_block_restores_on_an_exception():
    with pytest.raises(RuntimeError, match="boom"):
        with numerics.flush_subnormals():
            raise RuntimeError("boom")
    assert not numerics.flushes_subnormals()


@needs_flush
def test_the_state_is_per_thread_and_a_thread_sets_its_own():
    seen, inside, done = {}, threading.Event(), threading.Event()

    def work():
        with numerics.flush_subnormals():
            seen["worker"] = numerics.flushes_subnormals()
            inside.set()
            done.wait(10)
        seen["worker after"] = numerics.flushes_subnormals()

    thread = threading.Thread(target=work)
    thread.start()
    assert inside.wait(10)
    seen["main"] = numerics.flushes_subnormals()  # while the worker flushes
    done.set()
    thread.join()
    assert seen == {"worker": True, "main": False, "worker after": False}


def test_as_a_decorator_each_call_restores():
    @numerics.flush_subnormals()
    def inside():
        return numerics.flushes_subnormals()

    assert inside() is SUPPORTED and inside() is SUPPORTED
    assert not numerics.flushes_subnormals()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_mask_and_zeroing_find_exactly_the_subnormals(dtype):
    finfo = torch.finfo(dtype)
    normal = torch.tensor([0.0, -0.0, 1.0, -2.5, finfo.tiny, -finfo.tiny, finfo.max],
                          dtype=dtype)
    values = torch.cat([normal, smallest_subnormal(2, dtype), -smallest_subnormal(1, dtype)])
    expect = torch.tensor([False] * len(normal) + [True] * 3)
    for flushing in (False, True):  # bits, not arithmetic: the answer is the same either way
        torch.set_flush_denormal(flushing)
        assert torch.equal(numerics.subnormal_mask(values), expect)
    torch.set_flush_denormal(False)
    state = {"w": values.reshape(2, 5), "steps": torch.arange(3), "b": normal}
    clean = numerics.without_subnormals(state)
    assert not numerics.subnormal_mask(clean["w"]).any()
    assert torch.equal(clean["w"].flatten()[:len(normal)], normal)
    assert (clean["w"].flatten()[len(normal):] == 0).all()
    assert clean["steps"] is state["steps"] and clean["b"] is state["b"]  # nothing to clean
    assert numerics.subnormal_mask(state["w"]).sum() == 3  # the input is not modified
