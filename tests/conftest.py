"""Shared test settings.  HYPOTHESIS_PROFILE=arm64 gives fewer examples for runs under qemu."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("arm64", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("thorough", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# ------------------------------------------------------------------ `kws train` tests on toy data
@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    """A tiny tone-word data set (yes / no, cat / dog as unknown words) for training tests."""
    from kws.distill.toydata import make_toy_dataset
    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "data", ["yes", "no", "cat", "dog"],
                            per_word=12, seed=2)


def toy_train_args(data, out, *extra, epochs: int = 2) -> list:
    """`kws train` arguments of a tiny model (4 blocks, 64 channels, batch 8, Adam 1e-3) on toy_data."""
    return ["train", "--data", str(data), "--task", "custom", "--words", "yes,no", "--out", str(out),
            "--epochs", str(epochs), "--teacher-epochs", str(epochs), "--batch-size", "8",
            "--backbone", "64", "--hidden", "64", "--n-blocks", "4", "--threads", "1", "--seed", "3",
            "--no-progress", "--optimizer", "adam", *extra]


# ------------------------------------------------------------------ Detector tests
@pytest.fixture(scope="module")
def tone_bursts():
    """3 s of noise with 300 Hz bursts (float32, 16 kHz): random models fire on it."""
    rng = np.random.default_rng(0)
    t = np.arange(3 * 16000) / 16000
    x = 0.05 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 300 * t) * (np.sin(2 * np.pi * 0.7 * t) > 0)
    return x.astype(np.float32)
