"""The checkers homework tests call (`from course_lib.grading import check_conv_params`),
re-exported from `course_lib.grading.checks`. Grading a class lives in `course_lib.autograde`."""

from course_lib.grading.checks.hw1_arithmetic import (
    check_conv_forward, check_conv_output_size, check_conv_params, check_maxpool_backward, check_vgg_params,
)
from course_lib.grading.checks.compare import CheckFailure
from course_lib.grading.checks.guard import ForbiddenCallError
from course_lib.grading.checks.hw2_layers import (
    check_batchnorm_backward, check_batchnorm_forward, check_dropout_forward, check_init_std,
)
from course_lib.grading.checks.hw3_transfer import (
    check_augment, check_extract_features, check_linear_classifier, check_lora_linear, check_tta_flip,
)
from course_lib.grading.checks.hw4_visualize import (
    check_knn_accuracy, check_occlusion_map, check_receptive_box, check_tsne_map,
)

__all__ = [
    "CheckFailure", "ForbiddenCallError",
    "check_conv_output_size", "check_conv_params", "check_vgg_params", "check_conv_forward", "check_maxpool_backward",
    "check_batchnorm_forward", "check_batchnorm_backward", "check_dropout_forward", "check_init_std",
    "check_augment", "check_tta_flip", "check_extract_features", "check_linear_classifier", "check_lora_linear",
    "check_occlusion_map", "check_receptive_box", "check_knn_accuracy", "check_tsne_map",
]
