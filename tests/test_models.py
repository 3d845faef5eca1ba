"""The architectures: shapes, layer names, and the paper's weight decay lambda * sum(w^2) / k."""

import pytest
import torch

from intriguing.engine import models


@pytest.mark.parametrize(
    "make",
    [
        lambda: models.Softmax(1e-4),
        lambda: models.SigmoidMLP((100, 100), (1e-5, 1e-5, 1e-6)),
        lambda: models.SigmoidMLP((123, 456), (1e-5, 1e-5, 1e-6)),
        lambda: models.AutoencoderSoftmax(400, 1e-6),
        lambda: models.ConvNet(),
    ],
    ids=["FC10", "FC100-100-10", "FC123-456-10", "AE400-10", "ConvNet"],
)
def test_logits_shape(make):
    model = make().eval()
    out = model(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 10)
    assert torch.isfinite(out).all()


def test_softmax_weight_decay_is_lambda_sum_w2_over_units():
    model = models.Softmax(0.5)
    with torch.no_grad():
        model.body.fc.weight.fill_(2.0)
    # 10 units x 784 weights of 4 each, divided by k = 10 units, times lambda
    assert model.weight_decay().item() == pytest.approx(0.5 * 4 * 784 * 10 / 10)


def test_mlp_weight_decay_per_layer():
    model = models.SigmoidMLP((100, 50), (1e-5, 2e-5, 1e-6))
    layers = dict(model.body.named_children())
    expected = sum(
        lam * layers[n].weight.pow(2).sum().item() / layers[n].weight.shape[0]
        for n, lam in [("fc1", 1e-5), ("fc2", 2e-5), ("out", 1e-6)]
    )
    assert model.weight_decay().item() == pytest.approx(expected, rel=1e-5)


def test_mlp_layer_names_expose_hidden_units():
    model = models.SigmoidMLP((100, 100), (1e-5, 1e-5, 1e-6))
    assert model.layer_names() == ["flatten", "fc1", "act1", "fc2", "act2", "out"]


def test_autoencoder_softmax_freezes_encoder():
    ae = models.SparseAutoencoder(400)
    net = models.AutoencoderSoftmax(400, 1e-6)
    net.load_encoder(ae)
    assert torch.equal(net.body.enc.weight, ae.encoder.fc.weight)
    assert not net.body.enc.weight.requires_grad
    assert net.body.out.weight.requires_grad
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(net.features(x), ae(x)[0])


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: models.SigmoidMLP((), (1e-5,)), "hidden"),
        (lambda: models.SigmoidMLP((100, -1), (1e-5, 1e-5, 1e-6)), "hidden"),
        (lambda: models.SigmoidMLP((100,), (1e-5,)), "lambdas must hold 2"),
        (lambda: models.Softmax(-1.0), "lambdas must be non-negative"),
        (lambda: models.SparseAutoencoder(0), "units"),
    ],
    ids=["no-hidden", "negative-width", "lambda-count", "negative-lambda", "zero-units"],
)
def test_bad_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()
