"""The paper's reported figures, transcribed from its Tables 1-5, for side-by-side tables.

Why: every "paper" number the book prints comes from here (and every "ours" number from a run),
so a reader can trace each one to a table of Szegedy et al. (2014). Rates are fractions in [0,1];
distortions are per-pixel RMS on the [0,1] scale, as the paper defines them.

References: Szegedy et al. 2014, arXiv:1312.6199, Tables 1-5 (section 4.3 and 4.4).
"""

from __future__ import annotations

#: Table 1: MNIST models, their error rates and average minimum distortion.
TABLE1: dict[str, dict[str, float | str]] = {
    "FC10(1e-4)": {"description": "softmax, lambda=1e-4", "train_error": 0.067,
                   "test_error": 0.074, "distortion": 0.062},
    "FC10(1e-2)": {"description": "softmax, lambda=1e-2", "train_error": 0.10,
                   "test_error": 0.094, "distortion": 0.1},
    "FC10(1)": {"description": "softmax, lambda=1", "train_error": 0.212,
                "test_error": 0.20, "distortion": 0.14},
    "FC100-100-10": {"description": "sigmoid network, lambda=1e-5, 1e-5, 1e-6",
                     "train_error": 0.0, "test_error": 0.0164, "distortion": 0.058},
    "FC200-200-10": {"description": "sigmoid network, lambda=1e-5, 1e-5, 1e-6",
                     "train_error": 0.0, "test_error": 0.0154, "distortion": 0.065},
    "AE400-10": {"description": "autoencoder with softmax, lambda=1e-6",
                 "train_error": 0.0057, "test_error": 0.019, "distortion": 0.086},
}

#: Table 2: error rates on the adversarial (or noisy) training set. Row: made for; column: fed to.
TABLE2_COLUMNS = ["FC10(1e-4)", "FC10(1e-2)", "FC10(1)", "FC100-100-10", "FC200-200-10", "AE400-10"]
TABLE2: dict[str, dict[str, float]] = {
    "FC10(1e-4)": dict(zip(TABLE2_COLUMNS, [1.0, 0.117, 0.227, 0.02, 0.039, 0.027])),
    "FC10(1e-2)": dict(zip(TABLE2_COLUMNS, [0.871, 1.0, 0.352, 0.359, 0.273, 0.098])),
    "FC10(1)": dict(zip(TABLE2_COLUMNS, [0.719, 0.762, 1.0, 0.481, 0.47, 0.344])),
    "FC100-100-10": dict(zip(TABLE2_COLUMNS, [0.289, 0.137, 0.211, 1.0, 0.066, 0.02])),
    "FC200-200-10": dict(zip(TABLE2_COLUMNS, [0.382, 0.14, 0.238, 0.203, 1.0, 0.027])),
    "AE400-10": dict(zip(TABLE2_COLUMNS, [0.234, 0.16, 0.248, 0.094, 0.066, 1.0])),
    "Gaussian noise, stddev=0.1": dict(zip(TABLE2_COLUMNS, [0.05, 0.101, 0.183, 0.0, 0.0, 0.008])),
    "Gaussian noise, stddev=0.3": dict(zip(TABLE2_COLUMNS, [0.156, 0.113, 0.227, 0.05, 0.043, 0.031])),
}
#: Table 2's last column: the average distortion of each row's set.
TABLE2_DISTORTION: dict[str, float] = {
    "FC10(1e-4)": 0.062, "FC10(1e-2)": 0.1, "FC10(1)": 0.14, "FC100-100-10": 0.058,
    "FC200-200-10": 0.065, "AE400-10": 0.086,
    "Gaussian noise, stddev=0.1": 0.1, "Gaussian noise, stddev=0.3": 0.3,
}

#: Table 3: clean error rates of the cross-training-set models, and their minimum distortion.
TABLE3: dict[str, dict[str, float]] = {
    "FC100-100-10@P1": {"P1_error": 0.0, "P2_error": 0.024, "test_error": 0.02, "distortion": 0.062},
    "FC123-456-10@P1": {"P1_error": 0.0, "P2_error": 0.025, "test_error": 0.021, "distortion": 0.059},
    "FC100-100-10'@P2": {"P1_error": 0.023, "P2_error": 0.0, "test_error": 0.021, "distortion": 0.058},
}

#: Table 4: cross-training-set transfer on the test set. Row: what the set is; column: fed to.
TABLE4_COLUMNS = ["FC100-100-10@P1", "FC123-456-10@P1", "FC100-100-10'@P2"]
TABLE4: dict[str, dict[str, float]] = {
    "Distorted for FC100-100-10@P1": dict(zip(TABLE4_COLUMNS, [1.0, 0.262, 0.059])),
    "Distorted for FC123-456-10@P1": dict(zip(TABLE4_COLUMNS, [0.0625, 1.0, 0.051])),
    "Distorted for FC100-100-10'@P2": dict(zip(TABLE4_COLUMNS, [0.082, 0.082, 1.0])),
    "Gaussian noise, stddev=0.06": dict(zip(TABLE4_COLUMNS, [0.022, 0.026, 0.024])),
    "Distorted for FC100-100-10@P1, amplified to stddev=0.1": dict(zip(TABLE4_COLUMNS, [1.0, 0.98, 0.43])),
    "Distorted for FC123-456-10@P1, amplified to stddev=0.1": dict(zip(TABLE4_COLUMNS, [0.96, 1.0, 0.22])),
    "Distorted for FC100-100-10'@P2, amplified to stddev=0.1": dict(zip(TABLE4_COLUMNS, [0.27, 0.50, 1.0])),
    "Gaussian noise, stddev=0.1": dict(zip(TABLE4_COLUMNS, [0.026, 0.028, 0.027])),
}

#: Table 5: upper Lipschitz bounds of AlexNet's layers.
TABLE5: list[dict[str, float | str | int | None]] = [
    {"layer": "Conv. 1", "size": "3x11x11x96", "stride": 4, "bound": 2.75},
    {"layer": "Conv. 2", "size": "96x5x5x256", "stride": 1, "bound": 10.0},
    {"layer": "Conv. 3", "size": "256x3x3x384", "stride": 1, "bound": 7.0},
    {"layer": "Conv. 4", "size": "384x3x3x384", "stride": 1, "bound": 7.5},
    {"layer": "Conv. 5", "size": "384x3x3x256", "stride": 1, "bound": 11.0},
    {"layer": "FC. 1", "size": "9216x4096", "stride": None, "bound": 3.12},
    {"layer": "FC. 2", "size": "4096x4096", "stride": None, "bound": 4.0},
    {"layer": "FC. 3", "size": "4096x1000", "stride": None, "bound": 4.0},
]

#: Headline claims outside the tables (section 4.2-4.3).
CLAIMS: dict[str, float] = {
    "advtrain_test_error": 0.012,        # "below 1.2%" with adversarial training
    "weight_decay_test_error": 0.016,    # 1.6% with weight decay alone
    "dropout_test_error": 0.013,         # "~1.3%" with dropout
    "alexnet_ostrich_distortion": 0.0065,
    "gaussian_stddev1_accuracy": 0.51,   # Fig. 7: noise of stddev 1 leaves 51% accuracy
    "adversarial_accuracy": 0.0,         # Fig. 7: adversarial sets at 0% accuracy
}

#: The paper's test errors for a 100-100-10 network, by training (section 4.2; "below 1.2%" for
#: adversarial training, "around 1.3%" with "carefully applied dropout"), from ``CLAIMS``.
ADVTRAIN_TEST_ERROR: dict[str, float] = {
    "weight decay": CLAIMS["weight_decay_test_error"],
    "adversarial training": CLAIMS["advtrain_test_error"],
    "dropout": CLAIMS["dropout_test_error"]}
