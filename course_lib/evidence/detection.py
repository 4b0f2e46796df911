"""Claim (an aside on other vision tasks): a classifier slid over an image's windows is a detector,
which localizes only as finely as its stride.

Setup: scenes of 96x96 black pixels with `DIGITS` MNIST digits pasted at random, non-overlapping
positions; each digit's ground-truth box is its 28x28 patch. A `SmallCNN(8, 16)` with 11
classes (the digits and "background") is trained with Adam (lr 3e-3, batch 50) on
`per_class` digits per class drawn with the seed and as many 28x28 background windows cut from
training scenes (windows whose IoU with every digit box is below 0.3: empty, or a digit cut
off). Detection (`detect`): classify every 28x28 window at a given stride, keep windows whose top
class is a digit with probability above 0.5, then non-maximum suppression
(`torchvision.ops.nms`, IoU 0.3). Scoring on `test_scenes` scenes built from the fixed test
digits: a detection is correct when its class matches an unmatched ground-truth digit with IoU
>= 0.5 (`torchvision.ops.box_iou`). Metrics per stride: `recall`, `precision`, `best_iou` (the
mean over ground-truth digits of the best IoU of any detection of any class: localization
alone) and `windows` (classifier calls per scene: the cost).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torchvision.ops import box_iou, nms

from course_lib.device import seed_everything
from course_lib.evidence import plotting
from course_lib.evidence._common import draw, mnist_split, train
from course_lib.evidence.table import EvidenceTable, Record, run_table
from course_lib.evidence.verdicts import Comparison
from course_lib.models import SmallCNN
from course_lib.train import predict

NAME = "detection"
TITLE = "Other vision tasks: a sliding-window detector from a classifier"
CLAIM = ("Other tasks (detection, segmentation) build on the same CNNs: a classifier slid over windows detects "
         "objects, but localizes only as finely as its stride.")
SCENE, WINDOW, DIGITS, BACKGROUND = 96, 28, 3, 10
STRIDES = (2, 7, 14)


@dataclass(frozen=True)
class Settings:
    per_class: int = 100
    epochs: int = 4
    batch_size: int = 50
    lr: float = 3e-3
    test_scenes: int = 30


FULL = Settings()
FAST = replace(FULL, per_class=50, epochs=3, test_scenes=12)


def make_scene(digits: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste digits (D, 1, 28, 28) at random non-overlapping places on a black SCENE x SCENE canvas.
    Returns (scene (1, SCENE, SCENE), boxes (D, 4) as x1, y1, x2, y2)."""
    scene, boxes = torch.zeros(1, SCENE, SCENE), []
    while len(boxes) < len(digits):
        x, y = torch.randint(0, SCENE - WINDOW + 1, (2,), generator=generator).tolist()
        box = torch.tensor([[x, y, x + WINDOW, y + WINDOW]], dtype=torch.float32)
        if not boxes or box_iou(box, torch.cat(boxes)).max() == 0:
            boxes.append(box)
            patch = scene[:, y:y + WINDOW, x:x + WINDOW]
            patch.copy_(torch.maximum(patch, digits[len(boxes) - 1]))
    return scene, torch.cat(boxes)


def windows(scene: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every WINDOW x WINDOW window of scene (1, H, W) at `stride`: (n, 1, 28, 28) and boxes (n, 4)."""
    patches = scene.unfold(1, WINDOW, stride).unfold(2, WINDOW, stride)       # (1, rows, cols, 28, 28)
    rows, cols = patches.shape[1:3]
    ys, xs = torch.meshgrid(torch.arange(rows) * stride, torch.arange(cols) * stride, indexing="ij")
    corners = torch.stack([xs.flatten(), ys.flatten()], 1).float()
    return patches.reshape(-1, 1, WINDOW, WINDOW), torch.cat([corners, corners + WINDOW], 1)


def detect(model, scene: torch.Tensor, stride: int, threshold: float = 0.5, overlap: float = 0.3):
    """Detections in scene (1, H, W): (boxes (k, 4), labels (k,), scores (k,)) after NMS."""
    patches, boxes = windows(scene, stride)
    probs = F.softmax(predict(model, patches).cpu(), dim=1)[:, :BACKGROUND]   # digit classes only
    scores, labels = probs.max(1)
    keep = scores > threshold
    boxes, labels, scores = boxes[keep], labels[keep], scores[keep]
    kept = nms(boxes, scores, overlap)
    return boxes[kept], labels[kept], scores[kept]


def match(boxes, labels, truth_boxes, truth_labels, min_iou: float = 0.5) -> int:
    """True positives: detections (in score order) matched to an unmatched same-class truth with IoU >= min_iou."""
    if len(boxes) == 0:
        return 0
    iou, used, hits = box_iou(boxes, truth_boxes), set(), 0
    for d in range(len(boxes)):
        for t in iou[d].argsort(descending=True).tolist():
            if iou[d, t] >= min_iou and t not in used and labels[d] == truth_labels[t]:
                used.add(t)
                hits += 1
                break
    return hits


def background_windows(count: int, digits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """`count` windows (count, 1, 28, 28) of training scenes whose IoU with every digit is below 0.3."""
    found = []
    while sum(len(f) for f in found) < count:
        picks = digits[torch.randint(0, len(digits), (DIGITS,), generator=generator)]
        scene, truth = make_scene(picks, generator)
        patches, boxes = windows(scene, 7)
        found.append(patches[box_iou(boxes, truth).max(1).values < 0.3])
    return torch.cat(found)[:count]


def scenes_of_test_digits(split, n: int, seed: int):
    """n scenes of test digits: a list of (scene, boxes, labels)."""
    generator = torch.Generator().manual_seed(1000 + seed)
    scenes = []
    for _ in range(n):
        index = torch.randint(0, len(split.test_y), (DIGITS,), generator=generator)
        scene, boxes = make_scene(split.test_x[index], generator)
        scenes.append((scene, boxes, split.test_y[index]))
    return scenes


def train_detector(split, s: Settings, seed: int, device=None):
    """A SmallCNN(8, 16) with 11 classes trained on digits and background windows drawn with `seed`."""
    x, y = draw(split.pool, s.per_class, seed)
    background = background_windows(len(y), x, torch.Generator().manual_seed(seed))
    seed_everything(seed)
    model = SmallCNN(channels=(8, 16), num_classes=BACKGROUND + 1)
    train(model, torch.cat([x, background]), torch.cat([y, torch.full((len(background),), BACKGROUND)]),
          epochs=s.epochs, batch_size=s.batch_size, optimizer="adam", lr=s.lr, seed=seed, device=device)
    return model.eval()


def score_stride(model, scenes, stride: int) -> dict[str, float]:
    """recall, precision, best_iou and windows per scene over `scenes` at `stride`."""
    hits = found = truths = 0
    best = []
    for scene, truth_boxes, truth_labels in scenes:
        boxes, labels, _ = detect(model, scene, stride)
        hits += match(boxes, labels, truth_boxes, truth_labels)
        found, truths = found + len(boxes), truths + len(truth_boxes)
        best += box_iou(truth_boxes, boxes).max(1).values.tolist() if len(boxes) else [0.0] * len(truth_boxes)
    return {"recall": hits / truths, "precision": hits / max(found, 1), "best_iou": sum(best) / len(best),
            "windows": float(len(windows(scenes[0][0], stride)[1]))}


def condition(stride: int) -> str:
    return f"stride {stride}"


def run(seeds=range(5), fast: bool = False, device=None) -> EvidenceTable:
    return run_with_models(seeds, fast, device)[0]


def run_with_models(seeds=(0,), fast: bool = True, device=None) -> tuple[EvidenceTable, dict]:
    """`run`'s table and, per seed, (the trained detector, its test scenes) for pictures."""
    s = FAST if fast else FULL
    split = mnist_split(1000)
    kept = {}

    def one_seed(seed: int) -> list[Record]:
        model = train_detector(split, s, seed, device).cpu()
        kept[seed] = (model, scenes_of_test_digits(split, s.test_scenes, seed))
        return [Record(condition(stride), seed, metric, value)
                for stride in STRIDES for metric, value in score_stride(model, kept[seed][1], stride).items()]

    table = run_table(NAME, seeds, one_seed,
                      dict(vars(s), fast=fast, scene=SCENE, digits=DIGITS, strides=list(STRIDES)))
    return table, kept


def comparisons(table: EvidenceTable) -> list[Comparison]:
    fine, middle, coarse = (condition(n) for n in STRIDES)
    return [Comparison("localization (best IoU): stride 2 above stride 14", (fine, "best_iou"), (coarse, "best_iou")),
            Comparison("localization (best IoU): stride 2 above stride 7", (fine, "best_iou"), (middle, "best_iou")),
            Comparison("recall at IoU 0.5: stride 2 above stride 14", (fine, "recall"), (coarse, "recall")),
            Comparison("cost (windows per scene): stride 2 above stride 14", (fine, "windows"), (coarse, "windows"))]


def table_metrics(table: EvidenceTable) -> list[str]:
    return ["recall", "precision", "best_iou", "windows"]


def plot(table: EvidenceTable):
    """Recall, precision and best IoU against the stride, with 95% intervals."""
    fig, (ax,) = plotting.figure(width=5.5)
    conditions = [condition(n) for n in STRIDES]
    for metric, offset in zip(("recall", "precision", "best_iou"), (-0.12, 0.0, 0.12)):
        plotting.interval_points(ax, table, conditions, metric, offset=offset, label=metric)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    ax.set_title(f"sliding-window detection of digits in 96x96 scenes ({plotting.caption(table)})", fontsize=9)
    return fig


def plot_detections(scene: torch.Tensor, truth_boxes, detections, title: str = ""):
    """The scene with ground-truth boxes (green) and detections (red, with class and score)."""
    from matplotlib.patches import Rectangle

    fig, (ax,) = plotting.figure(width=4.0, height=4.0)
    ax.imshow(scene[0].numpy(), cmap="gray")
    for box in truth_boxes.tolist():
        ax.add_patch(Rectangle((box[0] - 0.5, box[1] - 0.5), WINDOW, WINDOW, fill=False, color="lime", lw=2))
    for box, label, score in zip(*(d.tolist() for d in detections)):
        ax.add_patch(Rectangle((box[0] - 0.5, box[1] - 0.5), WINDOW, WINDOW, fill=False, color="red", lw=1))
        ax.text(box[0], box[1] - 1, f"{label} {score:.2f}", color="red", fontsize=7)
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    return fig
