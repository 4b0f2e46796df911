"""The `course` command for instructors and students.

    course build               the main job (`make course`): for now, the VGG16 table and
                               the slides' worked example
    course summary MODEL       per-layer table of a torchvision model (or "vgg16_style")
    course example             the slides' worked example: conv layer vs fully connected
"""

from __future__ import annotations

import argparse
import sys

from course_lib import arithmetic


def worked_example() -> str:
    """The slide: 90x90x10 input, 5 filters of 3x3x10, stride 1, padding 1."""
    height, width, channels, filters = 90, 90, 10, 5
    out_h, out_w = arithmetic.conv_output_size((height, width), 3, stride=1, padding=1)
    conv = arithmetic.conv_params(channels, filters, 3)
    inputs, hidden = height * width * channels, out_h * out_w * filters
    dense = arithmetic.linear_params(inputs, hidden)
    return "\n".join([
        f"input {height}x{width}x{channels}, {filters} filters of 3x3x{channels}, stride 1, padding 1",
        f"  conv output: {out_h}x{out_w}x{filters}",
        f"  conv parameters: {conv:,} ({filters} x (3*3*{channels}) weights + {filters} biases)",
        f"  fully connected {inputs:,} -> {hidden:,} units: {dense:,} parameters",
        f"  the conv layer has {dense // conv:,}x fewer parameters",
    ])


def model_summary(name: str, input_size=(3, 224, 224)) -> str:
    import torchvision.models

    builder = getattr(torchvision.models, name, None)
    if builder is None or not callable(builder):
        raise SystemExit(f"course: unknown torchvision model {name!r}; try vgg16, resnet18, alexnet")
    return str(arithmetic.summarize(builder(weights=None), input_size))


def _build(args) -> int:
    print("VGG16 at 224x224: where the parameters and the compute live\n")
    print(model_summary("vgg16"))
    print("\nThe slides' worked example\n")
    print(worked_example())
    return 0


def _summary(args) -> int:
    size = tuple(int(v) for v in args.input.split(","))
    print(model_summary(args.model, size))
    return 0


def _example(args) -> int:
    print(worked_example())
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="course", description="dl-course: the CNN lecture's library, notebooks and homework")
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="the main job: build the course").set_defaults(run=_build)
    summary = commands.add_parser("summary", help="per-layer table of a torchvision model")
    summary.add_argument("model", help="a torchvision model name, e.g. vgg16")
    summary.add_argument("--input", default="3,224,224", help="C,H,W (default 3,224,224)")
    summary.set_defaults(run=_summary)
    commands.add_parser("example", help="the slides' conv vs fully connected example").set_defaults(run=_example)
    return top


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
