"""course_lib.train against hand computations (torch.nn.functional), scikit-learn
(separability), torch.optim classes, and real data."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib import data, models, train


def _blobs(n=300, seed=0):
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=n, centers=[[-4, -4], [4, -4], [0, 5]], cluster_std=1.0, random_state=seed)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def _loader(x, y, batch_size=32, shuffle=False, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, generator=generator)


# --- optimizers ------------------------------------------------------------------------


@pytest.mark.parametrize("name, cls, momentum", [
    ("sgd", torch.optim.SGD, 0), ("momentum", torch.optim.SGD, 0.9),
    ("adam", torch.optim.Adam, None), ("rmsprop", torch.optim.RMSprop, 0),
])
def test_each_optimizer_name_builds_the_matching_torch_class(name, cls, momentum):
    params = nn.Linear(2, 2).parameters()
    optimizer = train.make_optimizer(name, params, weight_decay=1e-4)
    assert type(optimizer) is cls
    group = optimizer.param_groups[0]
    assert group["lr"] == train.DEFAULT_LR[name] and group["weight_decay"] == 1e-4
    if momentum is not None:
        assert group["momentum"] == momentum
    assert train.make_optimizer(name, nn.Linear(2, 2).parameters(), lr=0.5).param_groups[0]["lr"] == 0.5


def test_unknown_optimizer_lists_the_valid_names():
    with pytest.raises(ValueError) as error:
        train.fit(nn.Linear(2, 3), _loader(*_blobs(30)), optimizer="adagrad", device="cpu")
    for name in train.OPTIMIZERS:
        assert name in str(error.value)


# --- fit ---------------------------------------------------------------------------------


def test_fit_separates_a_separable_problem():
    from sklearn.linear_model import LogisticRegression

    x, y = _blobs()
    assert LogisticRegression().fit(x.numpy(), y.numpy()).score(x.numpy(), y.numpy()) == 1.0  # separable
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    history = train.fit(model, _loader(x, y, shuffle=True), _loader(x, y), epochs=5, optimizer="momentum",
                        lr=0.05, device="cpu")
    assert len(history) == 5
    for values in (history.train_loss, history.train_accuracy, history.val_loss, history.val_accuracy,
                   history.seconds, history.lr):
        assert len(values) == 5
    assert history.val_accuracy[-1] >= 0.97
    assert history.train_loss[-1] < history.train_loss[0]
    assert all(s > 0 for s in history.seconds)


def test_fit_without_validation_leaves_the_val_history_empty():
    history = train.fit(nn.Linear(2, 3), _loader(*_blobs(60)), epochs=2, device="cpu")
    assert len(history.train_loss) == 2 and history.val_loss == [] and history.val_accuracy == []


def test_fit_train_metrics_are_example_means_over_the_epoch():
    x, y = _blobs(50)
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    reference = nn.Linear(2, 3)
    reference.load_state_dict(model.state_dict())
    history = train.fit(model, _loader(x, y, batch_size=16), epochs=1, optimizer="sgd", lr=0.1, device="cpu")
    # replay the same SGD steps by hand: loss of each batch before its step, weighted by size
    opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    total, correct = 0.0, 0
    for xb, yb in _loader(x, y, batch_size=16):
        logits = reference(xb)
        loss = F.cross_entropy(logits, yb)
        total += loss.item() * len(yb)
        correct += (logits.argmax(1) == yb).sum().item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert history.train_loss[0] == pytest.approx(total / 50, rel=1e-5)
    assert history.train_accuracy[0] == correct / 50
    torch.testing.assert_close(model.weight, reference.weight)


def test_fit_small_cnn_on_real_digits():
    torch.manual_seed(0)
    train_set, val_set = data.train_val_split(data.load_digits(), 0.2, seed=0)
    model = models.SmallCNN(input_size=8, channels=(16, 32), batch_norm=True)
    history = train.fit(model, DataLoader(train_set, batch_size=32, shuffle=True), DataLoader(val_set, batch_size=256),
                        epochs=3, optimizer="adam", lr=3e-3, device="cpu")
    assert history.val_accuracy[-1] >= 0.9


def test_fit_with_an_optimizer_instance_and_a_scheduler():
    model = nn.Linear(2, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    history = train.fit(model, _loader(*_blobs(40)), epochs=3, optimizer=optimizer, device="cpu",
                        scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    assert history.lr == pytest.approx([0.2, 0.1, 0.05])
    with pytest.raises(ValueError, match="lr applies only"):
        train.fit(model, _loader(*_blobs(40)), optimizer=optimizer, lr=0.1, device="cpu")


def test_fit_uses_get_device_by_default(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    model = nn.Linear(2, 3)
    train.fit(model, _loader(*_blobs(30)))
    assert model.weight.device.type == "cpu"


def test_amp_is_refused_off_cuda():
    with pytest.raises(ValueError, match="CUDA"):
        train.fit(nn.Linear(2, 3), _loader(*_blobs(30)), amp=True, device="cpu")


def test_fit_and_evaluate_on_each_device(device):
    x, y = _blobs()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    history = train.fit(model, _loader(x, y, shuffle=True), _loader(x, y), epochs=4, optimizer="adam", lr=0.02,
                        device=device)
    assert all(p.device.type == device.type for p in model.parameters())
    assert history.val_accuracy[-1] >= 0.97  # under AMP on CUDA, too
    loss, accuracy = train.evaluate(model, _loader(x, y))
    assert accuracy == history.val_accuracy[-1]


# --- evaluate and predict -----------------------------------------------------------------


def test_evaluate_equals_a_hand_computation_with_an_uneven_last_batch():
    torch.manual_seed(0)
    x, y = torch.randn(30, 4), torch.randint(0, 3, (30,))
    model = nn.Linear(4, 3).train()
    loss, accuracy = train.evaluate(model, _loader(x, y, batch_size=7))  # batches 7,7,7,7,2
    with torch.no_grad():
        logits = model(x)
    assert loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert accuracy == (logits.argmax(1) == y).sum().item() / 30
    assert model.training  # mode restored


def test_predict_tensors_loaders_and_datasets():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 3)).train()
    x = torch.randn(20, 4)
    with torch.no_grad():
        expected = model.eval()(x)
    model.train()
    torch.testing.assert_close(train.predict(model, x, batch_size=6), expected)
    dataset = TensorDataset(x, torch.zeros(20, dtype=torch.long))
    torch.testing.assert_close(train.predict(model, DataLoader(dataset, batch_size=6)), expected)
    torch.testing.assert_close(train.predict(model, dataset), expected)
    torch.testing.assert_close(train.predict(model, [x[:5], x[5:]]), expected)
    assert model.training


# --- progress bars --------------------------------------------------------------------------


def test_fit_is_silent_when_quiet_and_draws_a_bar_when_asked(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_QUIET", "1")
    train.fit(nn.Linear(2, 3), _loader(*_blobs(30)), epochs=1, device="cpu")
    assert capsys.readouterr().err == ""
    train.fit(nn.Linear(2, 3), _loader(*_blobs(30)), epochs=1, device="cpu", progress=True)
    assert "epoch 1/1" in capsys.readouterr().err


def test_progress_follows_the_terminal_and_course_quiet(monkeypatch):
    import sys

    monkeypatch.delenv("COURSE_QUIET", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert train.progress_enabled() is True
    monkeypatch.setenv("COURSE_QUIET", "1")
    assert train.progress_enabled() is False
    monkeypatch.setenv("COURSE_QUIET", "0")
    assert train.progress_enabled() is True
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert train.progress_enabled() is False
    assert train.progress_enabled(True) is True
