"""The engine: MNIST (``data``), the paper's networks (``models``), training (``train``), the
named and cached models (``zoo``), the batched box-constrained L-BFGS attack (``attacks``) and
its cached attacked sets (``advsets``), and the measurements the experiments build on
(``spectral``, ``transfer``, ``units``, ``advtrain``). Imports plumbing only."""
