"""Models for the lecture: a small CNN, a VGG builder, the bundled backbone, ImageNet loaders.

* `SmallCNN`       conv(3x3, pad 1)[-BN]-ReLU-maxpool(2) blocks, then flatten[-dropout]-Linear.
                   `model.features[i]` is block i (its own `nn.Sequential`), `model.head[-1]`
                   is the last fully connected layer: `model.head[-1] = nn.Identity()` turns
                   the model into a feature extractor giving `(N, model.feature_dim)`.
* `vgg_style`      a VGG from a config list like torchvision's ([64, 'M', 128, 'M', ...]);
                   `VGG_CONFIGS` holds vgg11/13/16/19. Module names and shapes equal
                   torchvision's, so its state dicts load directly.
* `pretrained_backbone()`  a SmallCNN this project trained on MNIST digits 0-4
                   (`scripts/pretrain_backbone.py`), shipped in `assets/backbone/` with a
                   manifest; the file's sha256 is checked on every load.
* `load_torchvision(name)`, `load_hf(repo_id)`  real ImageNet models when the weights are
                   cached or the network is reachable; otherwise a `DownloadError` that says
                   what to fetch. Nothing touches the network at import time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from course_lib.data import DownloadError, file_digest, network_reachable, network_timeout

BACKBONE_DIR = Path(__file__).resolve().parent / "assets" / "backbone"
BACKBONE_FILE = "smallcnn_mnist04.pt"


# ---------------------------------------------------------------------------------------
# SmallCNN
# ---------------------------------------------------------------------------------------


def conv_block(in_channels: int, out_channels: int, batch_norm: bool = False) -> nn.Sequential:
    """conv 3x3 (padding 1)[-BatchNorm]-ReLU-maxpool 2x2: (N, C_in, H, W) -> (N, C_out, H//2, W//2).

    With batch norm the conv has no bias (BN's shift makes it redundant).
    """
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
    return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    """A small CNN for 28x28 digits (or any fixed input size).

    x: (N, in_channels, input_size, input_size) -> logits (N, num_classes)

    features: nn.Sequential of `len(channels)` blocks, each `conv_block(...)`; every block
              halves the spatial size (floor), so the last map is input_size // 2**len(channels).
    head:     nn.Sequential(Flatten[, Dropout(dropout)], Linear(feature_dim, num_classes)).

    A wrong input shape raises a ValueError that names the expected and the actual shape.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, channels: Sequence[int] = (16, 32),
                 batch_norm: bool = False, dropout: float = 0.0, input_size: int = 28):
        super().__init__()
        final = input_size // 2 ** len(channels)
        if final < 1:
            raise ValueError(
                f"input_size {input_size} is too small for {len(channels)} pooling blocks "
                f"(needs at least {2 ** len(channels)}); use fewer channels entries or larger inputs"
            )
        self.in_channels, self.input_size = in_channels, input_size
        widths = [in_channels, *channels]
        self.features = nn.Sequential(*[conv_block(a, b, batch_norm) for a, b in zip(widths, widths[1:])])
        self.feature_dim = channels[-1] * final * final
        head = [nn.Flatten()] + ([nn.Dropout(dropout)] if dropout > 0 else [])
        self.head = nn.Sequential(*head, nn.Linear(self.feature_dim, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.head(self.features(x))  # (N, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Features before the last Linear layer: (N, C, H, W) -> (N, feature_dim)."""
        self.check_input(x)
        return self.head[:-1](self.features(x))

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError unless x has shape (N, in_channels, input_size, input_size)."""
        expected = (self.in_channels, self.input_size, self.input_size)
        if x.ndim == 4 and tuple(x.shape[1:]) == expected:
            return
        want = f"(N, {', '.join(map(str, expected))})"
        got = "(N, " + ", ".join(map(str, x.shape[1:])) + ")" if x.ndim == 4 else str(tuple(x.shape))
        hint = "add a batch dimension: x.unsqueeze(0)" if x.ndim == 3 else (
            f"resize the images, or build SmallCNN(in_channels={x.shape[1]}, input_size={x.shape[-1]})"
            if x.ndim == 4 else "pass a batch of images (N, C, H, W)")
        raise ValueError(f"SmallCNN expects {want} images, got {got}; {hint}")


# ---------------------------------------------------------------------------------------
# VGG
# ---------------------------------------------------------------------------------------

VGG_CONFIGS: dict[str, list] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """features -> AdaptiveAvgPool2d(pool_size) -> classifier, as torchvision's VGG.

    x: (N, in_channels, H, W) -> logits (N, num_classes)
    """

    def __init__(self, features: nn.Sequential, out_channels: int, num_classes: int,
                 hidden: int = 4096, pool_size: int = 7, dropout: float = 0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.classifier = nn.Sequential(
            nn.Linear(out_channels * pool_size * pool_size, hidden), nn.ReLU(True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))  # (N, C, pool, pool)
        return self.classifier(torch.flatten(x, 1))


def vgg_layers(config: Sequence, in_channels: int = 3, batch_norm: bool = False) -> nn.Sequential:
    """The conv part of a VGG: an int c adds conv 3x3 (pad 1) to c channels[-BN]-ReLU, 'M' a 2x2 max-pool."""
    layers: list[nn.Module] = []
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        if not isinstance(item, int) or isinstance(item, bool) or item < 1:
            raise ValueError(f"VGG config entries are channel counts (int > 0) or 'M', got {item!r}")
        layers.append(nn.Conv2d(in_channels, item, kernel_size=3, padding=1))
        layers += [nn.BatchNorm2d(item), nn.ReLU(inplace=True)] if batch_norm else [nn.ReLU(inplace=True)]
        in_channels = item
    return nn.Sequential(*layers)


def vgg_style(config: Sequence | str, in_channels: int = 3, num_classes: int = 1000, batch_norm: bool = False,
              hidden: int = 4096, pool_size: int = 7, dropout: float = 0.5) -> VGG:
    """A VGG built from `config` (a list, or a name in `VGG_CONFIGS` such as "vgg16").

    The defaults give torchvision's VGG exactly (same module names and parameter shapes;
    vgg16: 138,357,544 parameters). `hidden`, `pool_size` and `dropout` shrink the
    classifier for small inputs, e.g. vgg_style([32, 'M', 64, 'M'], 1, 10, hidden=128, pool_size=2).
    Weights use PyTorch's default initialization (torchvision re-initializes with Kaiming).
    """
    if isinstance(config, str):
        if config not in VGG_CONFIGS:
            raise ValueError(f"unknown VGG config {config!r}; choose from {list(VGG_CONFIGS)} or pass a list")
        config = VGG_CONFIGS[config]
    channels = [c for c in config if c != "M"]
    if not channels:
        raise ValueError("a VGG config needs at least one conv layer (an int)")
    features = vgg_layers(config, in_channels, batch_norm)
    return VGG(features, channels[-1], num_classes, hidden, pool_size, dropout)


# ---------------------------------------------------------------------------------------
# The bundled pretrained backbone
# ---------------------------------------------------------------------------------------


def backbone_manifest(directory=None) -> dict:
    """The manifest of the bundled backbone (architecture, data, split, seed, accuracy, hashes)."""
    directory = Path(directory) if directory is not None else BACKBONE_DIR
    path = directory / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; reinstall course_lib or run scripts/pretrain_backbone.py")
    return json.loads(path.read_text())


def file_sha256(path) -> str:
    """The sha256 hex digest of a file (the checksum `manifest.json` records)."""
    return file_digest(path, "sha256")


def pretrained_backbone(map_location: str | torch.device = "cpu", directory=None) -> SmallCNN:
    """The bundled SmallCNN trained on MNIST digits 0-4, in eval mode, on device `map_location`.

    Input (N, 1, 28, 28) in [0, 1]; output logits (N, 5) for the digits 0-4. Trained by
    `scripts/pretrain_backbone.py` on `course_lib.data.mnist_transfer_split()["pretrain"]`;
    the "heldout" part (digits 0-4) and the "similar" part (digits 5-9) were never seen.
    The weights' sha256 is checked against `manifest.json` before loading.
    """
    directory = Path(directory) if directory is not None else BACKBONE_DIR
    manifest = backbone_manifest(directory)
    path = directory / manifest["file"]
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; reinstall course_lib or run scripts/pretrain_backbone.py")
    actual = file_sha256(path)
    if actual != manifest["sha256"]:
        raise ValueError(
            f"{path} has sha256 {actual} but manifest.json records {manifest['sha256']}: the file is "
            "corrupt or was replaced without updating the manifest. Fix: reinstall course_lib "
            "(pip install -e .) or rerun `python scripts/pretrain_backbone.py`, which writes both."
        )
    model = SmallCNN(**manifest["model"])
    model.load_state_dict(torch.load(path, map_location=map_location, weights_only=True))
    return model.to(map_location).eval()


# ---------------------------------------------------------------------------------------
# Real ImageNet models (torchvision, timm via the Hugging Face hub)
# ---------------------------------------------------------------------------------------


def load_torchvision(name: str, weights: str | None = "DEFAULT", progress: bool = False) -> nn.Module:
    """A torchvision model by name (e.g. "resnet18", "vgg16"), in eval mode.

    weights: "DEFAULT", a weights name such as "IMAGENET1K_V1", or None (random init,
    always offline). Weights come from torch hub's cache (`$TORCH_HOME/hub/checkpoints`)
    or are downloaded with a timeout; if neither works a `DownloadError` says which file
    to fetch and where to put it.
    """
    import torchvision.models as tvm

    if name not in tvm.list_models():
        raise ValueError(f"unknown torchvision model {name!r}; choose from {', '.join(tvm.list_models())}")
    if weights is None:
        return tvm.get_model(name, weights=None).eval()
    weight = _torchvision_weight(name, weights)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weight.url).name
    if cached.exists():
        return tvm.get_model(name, weights=weight, progress=progress).eval()
    help_text = _weights_help(name, weight, cached)
    if not network_reachable(weight.url):
        raise DownloadError(f"{help_text} (no network: {weight.url} is unreachable)")
    try:
        with network_timeout():
            return tvm.get_model(name, weights=weight, progress=progress).eval()
    except (OSError, RuntimeError) as error:  # URLError, timeouts, hash mismatches
        raise DownloadError(f"{help_text} ({type(error).__name__}: {error})") from error


def _torchvision_weight(name: str, weights: str):
    import torchvision.models as tvm

    enum = tvm.get_model_weights(name)
    try:
        return enum.verify(weights)
    except (KeyError, ValueError) as error:
        valid = ["DEFAULT", *enum.__members__]
        raise ValueError(f"unknown weights {weights!r} for {name}; choose from {valid} or None") from error


def _weights_help(name: str, weight, cached: Path) -> str:
    return (
        f"the {name} weights {weight} are not in {cached} and could not be downloaded. Fix: on a "
        f"machine with network run `python -c \"import torchvision; torchvision.models.get_model('{name}', "
        f"weights='DEFAULT')\"`, then copy {cached.name} from its ~/.cache/torch/hub/checkpoints/ to "
        f"{cached.parent}/ here (or set TORCH_HOME); or pass weights=None for a randomly initialized model"
    )


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names in torchvision's order (offline, from the weights' metadata)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def load_hf(repo_id: str, pretrained: bool = True) -> nn.Module:
    """A timm model from the Hugging Face hub, e.g. "timm/resnet18.a1_in1k", in eval mode.

    Needs `timm` (not a dependency of this course: `pip install timm`). Weights come from
    the Hugging Face cache or the network; otherwise a `DownloadError` says what to do.
    """
    try:
        import timm
    except ImportError as error:
        raise ModuleNotFoundError(
            "load_hf needs timm, which is not installed. Fix: pip install timm "
            "(it brings huggingface_hub), or use load_torchvision(name) instead"
        ) from error
    try:
        with network_timeout():
            return timm.create_model(f"hf-hub:{repo_id}", pretrained=pretrained).eval()
    except Exception as error:  # hub errors come in many types; keep the cause chained
        raise DownloadError(
            f"could not load {repo_id!r} from the Hugging Face hub or its cache ({type(error).__name__}: "
            f"{error}). Fix: on a machine with network run `python -c \"import timm; "
            f"timm.create_model('hf-hub:{repo_id}', pretrained=True)\"` and copy ~/.cache/huggingface/hub "
            "here (or set HF_HOME); check the repo id on https://huggingface.co/timm"
        ) from error
