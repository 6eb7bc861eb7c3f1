"""The TabTransformer on a small frame with a known signal."""

import pickle
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from loan_default.lib.models.tab_transformer import TabTransformerClassifier, TabTransformerParams

FAST = TabTransformerParams(max_epochs=8, patience=3, pretrain_epochs=0, batch_size=128)


def signal_frame(n: int, seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x1, x2, noise = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    grade = rng.choice(["A", "B", "C"], size=n)
    logit = 2.0 * x1 - 1.5 * x2 + np.where(grade == "C", 1.5, 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pl.DataFrame(
        {
            "x1": x1,
            "x2": np.where(rng.random(n) < 0.1, np.nan, x2),
            "noise": noise,
            "c1": rng.normal(size=n),
            "c2": rng.normal(size=n),
            "grade": grade,
        }
    ).with_columns(pl.col("x2").fill_nan(None))
    return frame, y


def fitted(params=FAST, unlabeled=None, log=lambda _: None):
    train, y_train = signal_frame(2000, 0)
    model = TabTransformerClassifier(
        ["grade"], ["x1", "x2", "noise", "c1", "c2"], params, groups={"g": ["c1", "c2"]}
    )
    return model.fit(train, y_train, unlabeled=unlabeled, log=log)


@pytest.fixture(scope="module")
def model():
    return fitted()


def test_learns_the_signal(model):
    test, y = signal_frame(1000, 2)
    assert roc_auc_score(y, model.predict_proba(test)) > 0.8
    assert [h["phase"] for h in model.history] == ["train"] * len(model.history)


def test_same_seed_same_predictions_and_pickle_round_trip(model):
    test, _ = signal_frame(300, 3)
    again = fitted()
    np.testing.assert_array_equal(model.predict_proba(test), again.predict_proba(test))
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(model.predict_proba(test), restored.predict_proba(test))


def test_unseen_category_and_all_missing_numeric(model):
    test, _ = signal_frame(50, 4)
    odd = test.with_columns(grade=pl.lit("Z"), x2=pl.lit(None, dtype=pl.Float64))
    probability = model.predict_proba(odd)
    assert probability.shape == (50,) and np.isfinite(probability).all()


def test_pretraining_runs_and_is_logged():
    lines: list[str] = []
    unlabeled, _ = signal_frame(600, 5)
    params = TabTransformerParams(max_epochs=2, patience=2, pretrain_epochs=2, batch_size=128)
    model = fitted(params, unlabeled=unlabeled, log=lines.append)
    assert [h["phase"] for h in model.history] == ["pretrain", "pretrain", "train", "train"]
    assert any("NT-Xent" in line for line in lines)


def test_early_stopping_stops_when_its_held_out_training_rows_stall():
    train, _ = signal_frame(600, 6)
    shuffled = np.random.default_rng(0).integers(0, 2, 600)  # no signal to find
    params = TabTransformerParams(max_epochs=30, patience=2, pretrain_epochs=0)
    model = TabTransformerClassifier(["grade"], ["x1", "x2"], params)
    model.fit(train, shuffled, log=lambda _: None)
    assert len(model.history) < 30


def test_early_stopping_rows_are_a_seeded_share_of_the_training_rows_only():
    # The fit takes no validation rows at all: the stopping rows come from `train`. Rows held
    # out for stopping never enter a gradient step, so a model whose only signal sits in them
    # learns nothing from them.
    train, y = signal_frame(2000, 8)
    params = TabTransformerParams(max_epochs=3, patience=3, pretrain_epochs=0, batch_size=128)
    stop = np.random.default_rng(params.seed).random(train.height) < params.early_stopping_fraction
    assert 0.1 < stop.mean() < 0.2
    lines: list[str] = []
    TabTransformerClassifier(["grade"], ["x1", "x2"], params).fit(train, y, log=lines.append)
    assert any("early-stopping ROC-AUC" in line for line in lines)
    with pytest.raises(ValueError, match="both classes"):
        TabTransformerClassifier(["grade"], ["x1"], params).fit(train, np.zeros(2000, int))


def test_attention_dropout_is_its_own_setting_and_old_params_still_load(model):
    # Dropout on the attention weights takes torch's slow attention kernel on CPU, so it has
    # its own setting, off by default; `dropout` stays on the feed-forward and residuals.
    [layer] = model.network.encoder.layers
    assert layer.self_attn.dropout == FAST.attention_dropout == 0.0
    assert layer.dropout.p == FAST.dropout == 0.1
    again = TabTransformerClassifier(["grade"], ["x1"], replace(FAST, attention_dropout=0.2))
    train, y = signal_frame(400, 9)
    [layer] = again.fit(train, y, log=lambda _: None).network.encoder.layers
    assert layer.self_attn.dropout == 0.2
    # Params pickled before the field existed (registered versions) read its default.
    old = replace(FAST)
    del old.__dict__["attention_dropout"]
    restored = pickle.loads(pickle.dumps(old))
    assert "attention_dropout" not in restored.__dict__
    assert restored.attention_dropout == 0.0 and restored == FAST
