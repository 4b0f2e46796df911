"""Pretrain the bundled backbone: a SmallCNN on MNIST digits 0-4.

    python scripts/pretrain_backbone.py            # writes course_lib/assets/backbone/

Data: the bundled MNIST test set (`course_lib.data.mnist_transfer_split(seed=0)`):
"pretrain" (80% of each digit 0-4, 4,112 images) is trained on, "heldout" (the other
20%, 1,027 images) only measured, "similar" (all 4,861 digits 5-9) never touched, so
transfer experiments can use it as a new, similar task. Fixed seed, CPU, one to two minutes
on a 2-core machine. Writes `smallcnn_mnist04.pt` (a state dict) and `manifest.json`
(sha256, architecture, data, split hashes, seed, epochs, held-out accuracy, versions, date).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import platform
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from course_lib import data, models, train
from course_lib.device import seed_everything

MODEL = {"in_channels": 1, "num_classes": 5, "channels": [16, 32, 64], "batch_norm": True,
         "dropout": 0.0, "input_size": 28}
SEED = 0
HELDOUT_FRACTION = 0.2
EPOCHS = 4
BATCH_SIZE = 64
OPTIMIZER, LR = "adam", 1e-3


def indices_sha256(indices) -> str:
    """sha256 of an index array as little-endian int64 bytes (pins the split in the manifest)."""
    return hashlib.sha256(torch.as_tensor(indices, dtype=torch.int64).numpy().astype("<i8").tobytes()).hexdigest()


def main(out_dir: Path) -> dict:
    generator = seed_everything(SEED)
    parts = data.mnist_transfer_split(seed=SEED, heldout_fraction=HELDOUT_FRACTION)
    indices = data.mnist_transfer_indices(seed=SEED, heldout_fraction=HELDOUT_FRACTION)
    train_loader = DataLoader(parts["pretrain"], batch_size=BATCH_SIZE, shuffle=True, generator=generator)
    heldout_loader = DataLoader(parts["heldout"], batch_size=256)
    model = models.SmallCNN(**MODEL)
    start = time.perf_counter()
    history = train.fit(model, train_loader, heldout_loader, epochs=EPOCHS, optimizer=OPTIMIZER, lr=LR,
                        device="cpu")
    seconds = time.perf_counter() - start
    model.eval()
    heldout_loss, heldout_accuracy = train.evaluate(model, heldout_loader)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / models.BACKBONE_FILE
    torch.save(model.state_dict(), weights)
    manifest = {
        "file": models.BACKBONE_FILE,
        "sha256": models.file_sha256(weights),
        "model": MODEL,
        "data": "MNIST test set bundled in course_lib/assets/mnist (t10k), digits 0-4",
        "classes": parts["pretrain"].classes,
        "split": {
            "function": f"course_lib.data.mnist_transfer_split(seed={SEED}, heldout_fraction={HELDOUT_FRACTION})",
            "pretrain_size": len(indices["pretrain"]),
            "heldout_size": len(indices["heldout"]),
            "similar_size": len(indices["similar"]),
            "pretrain_indices_sha256": indices_sha256(indices["pretrain"]),
            "heldout_indices_sha256": indices_sha256(indices["heldout"]),
            "note": "heldout (digits 0-4) and similar (digits 5-9) were never trained on",
        },
        "seed": SEED,
        "epochs": EPOCHS,
        "batch_size": BATCH_SIZE,
        "optimizer": OPTIMIZER,
        "lr": LR,
        "heldout_accuracy": heldout_accuracy,
        "heldout_loss": heldout_loss,
        "history": history.as_dict(),
        "train_seconds": round(seconds, 1),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "date": datetime.date.today().isoformat(),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=models.BACKBONE_DIR, help="output folder")
    result = main(parser.parse_args().out)
    print(f"heldout_accuracy: {result['heldout_accuracy']:.4f}")
    print(f"train_seconds: {result['train_seconds']}")
    print(f"sha256: {result['sha256']}")
