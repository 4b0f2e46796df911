"""From-scratch layers: conv (through im2col), max-pool, batch norm and dropout.

Each layer is a pair in cs231n's style:

    out, cache = <layer>_forward(x, ...)
    dx, ...    = <layer>_backward(dout, cache)

Everything is plain tensor arithmetic (no autograd inside), so it runs on any device and
in any floating dtype; the tests check every forward against `torch.nn.functional` and
every backward against autograd and centred differences in float64.
"""

from __future__ import annotations

import torch

# ---------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------


def _pair(value, name):
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return tuple(value)
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def _check_rank(tensor, rank, name, layout):
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"expected {name} to be a torch.Tensor of shape {layout}, got {type(tensor).__name__}")
    if tensor.dim() != rank:
        raise ValueError(f"expected {name} of shape {layout}, got {tuple(tensor.shape)}")


def _check_window(height, width, kernel, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"kernel and stride must be >= 1 and padding >= 0, got {kernel}, {stride}, {padding}")
    if height + 2 * ph < kh or width + 2 * pw < kw:
        raise ValueError(
            f"the {kh}x{kw} window does not fit in the padded {height + 2 * ph}x{width + 2 * pw} input; "
            "use a smaller kernel or more padding"
        )
    return (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1


# ---------------------------------------------------------------------------------------
# im2col / col2im: a convolution as one matrix product
# ---------------------------------------------------------------------------------------


def _windows(x, kernel, stride, padding, fill=0.0):
    """All sliding windows of x as a view: (N, C, H', W', kh, kw)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if ph or pw:
        padded = x.new_full((x.shape[0], x.shape[1], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw), fill)
        padded[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]] = x
        x = padded
    return x.unfold(2, kh, sh).unfold(3, kw, sw)


def im2col(x, kernel_size, stride=1, padding=0):
    """Unroll every receptive-field window of x into a column.

    Inputs:
    - x: (N, C, H, W)
    - kernel_size, stride, padding: int or (height, width) pair; zero padding.
    Returns:
    - cols: (N, C * kh * kw, H' * W'), rows ordered (channel, kernel row, kernel col),
      columns ordered by output position in row-major order (as `F.unfold`), where
      H' = (H + 2 ph - kh) // sh + 1 and W' = (W + 2 pw - kw) // sw + 1.
    """
    # BEGIN ANSWER hw1.Q4
    _check_rank(x, 4, "x", "(N, C, H, W)")
    kernel, stride, padding = _pair(kernel_size, "kernel_size"), _pair(stride, "stride"), _pair(padding, "padding")
    _check_window(x.shape[2], x.shape[3], kernel, stride, padding)
    windows = _windows(x, kernel, stride, padding)  # (N, C, H', W', kh, kw)
    n, c, out_h, out_w, kh, kw = windows.shape
    return windows.permute(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, out_h * out_w)
    # END ANSWER


def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    """The adjoint of `im2col`: add every column back to the pixels it came from.

    Inputs:
    - cols: (N, C * kh * kw, H' * W'), as returned by `im2col`
    - x_shape: (N, C, H, W), the shape of the image that was unrolled
    - kernel_size, stride, padding: as given to `im2col`
    Returns:
    - x: (N, C, H, W); a pixel covered by several windows receives the sum of its copies
      (this is what makes `col2im` the backward pass of `im2col`).
    """
    # BEGIN ANSWER hw1.Q5
    _check_rank(cols, 3, "cols", "(N, C * kh * kw, H' * W')")
    kernel, stride, padding = _pair(kernel_size, "kernel_size"), _pair(stride, "stride"), _pair(padding, "padding")
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    out_h, out_w = _check_window(h, w, kernel, stride, padding)
    if cols.shape != (n, c * kh * kw, out_h * out_w):
        raise ValueError(
            f"expected cols of shape {(n, c * kh * kw, out_h * out_w)} for x_shape {tuple(x_shape)}, "
            f"got {tuple(cols.shape)}"
        )
    patches = cols.reshape(n, c, kh, kw, out_h, out_w)
    padded = cols.new_zeros((n, c, h + 2 * ph, w + 2 * pw))
    for i in range(kh):  # one strided slice per kernel position
        for j in range(kw):
            padded[:, :, i:i + sh * out_h:sh, j:j + sw * out_w:sw] += patches[:, :, i, j]
    return padded[:, :, ph:ph + h, pw:pw + w]
    # END ANSWER


# ---------------------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------------------


def conv2d_forward(x, w, b=None, stride=1, padding=0):
    """Convolution (cross-correlation, as in every deep-learning library) via im2col.

    Inputs:
    - x: (N, C, H, W) images
    - w: (F, C, kh, kw) filters
    - b: (F,) biases, or None
    - stride, padding: int or (height, width) pair; zero padding
    Returns a tuple of:
    - out: (N, F, H', W') with H' = (H + 2 ph - kh) // sh + 1, W' likewise
    - cache: (x_shape, cols, w, stride, padding, has_bias) for `conv2d_backward`
    """
    # BEGIN ANSWER hw1.Q4
    _check_rank(x, 4, "x", "(N, C, H, W)")
    _check_rank(w, 4, "w", "(F, C, kh, kw)")
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"x has {x.shape[1]} channels but w expects {w.shape[1]}: w must be (F, C, kh, kw) with C = x.shape[1]"
        )
    if b is not None and tuple(b.shape) != (w.shape[0],):
        raise ValueError(f"expected b of shape ({w.shape[0]},) (one bias per filter), got {tuple(b.shape)}")
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    n, _, h, width = x.shape
    out_h, out_w = _check_window(h, width, tuple(w.shape[2:]), stride, padding)
    cols = im2col(x, tuple(w.shape[2:]), stride, padding)  # (N, C*kh*kw, H'*W')
    out = w.reshape(w.shape[0], -1) @ cols                   # (N, F, H'*W')
    if b is not None:
        out = out + b.reshape(1, -1, 1)
    cache = (tuple(x.shape), cols, w, stride, padding, b is not None)
    return out.reshape(n, w.shape[0], out_h, out_w), cache
    # END ANSWER


def conv2d_backward(dout, cache):
    """Backward pass of `conv2d_forward`.

    Inputs:
    - dout: (N, F, H', W') upstream gradient
    - cache: from `conv2d_forward`
    Returns a tuple of:
    - dx: (N, C, H, W)
    - dw: (F, C, kh, kw)
    - db: (F,), or None when the forward pass had no bias
    """
    # BEGIN ANSWER hw1.Q5
    x_shape, cols, w, stride, padding, has_bias = cache
    n, f = dout.shape[:2]
    dout_flat = dout.reshape(n, f, -1)                                # (N, F, H'*W')
    dw = (dout_flat @ cols.transpose(1, 2)).sum(0).reshape(w.shape)   # (F, C*kh*kw)
    dcols = w.reshape(f, -1).t() @ dout_flat                          # (N, C*kh*kw, H'*W')
    dx = col2im(dcols, x_shape, tuple(w.shape[2:]), stride, padding)
    db = dout.sum(dim=(0, 2, 3)) if has_bias else None
    return dx, dw, db
    # END ANSWER


# ---------------------------------------------------------------------------------------
# Backprop through a stack of convolutions: the effective receptive field (hw1's experiment)
# ---------------------------------------------------------------------------------------


def conv2d_output(x, w, b, stride, padding):
    """`conv2d_forward` with hw1's signature: returns out (N, F, H', W') alone."""
    return conv2d_forward(x, w, b, stride, padding)[0]


def conv2d_gradients(dout, x, w, stride, padding):
    """`conv2d_backward` with hw1's signature: (dx, dw, None) from dout (N, F, H', W'),
    x (N, C, H, W) and w (F, C, kh, kw), without a cache."""
    return conv2d_backward(dout, conv2d_forward(x, w, None, stride, padding)[1])


def input_gradient(weights, size, forward=conv2d_output, backward=conv2d_gradients):
    """Gradient of the centre output pixel of a stack of single-channel 3x3 convolutions
    (stride 1, zero padding 1, no bias) with respect to the input image.

    Inputs:
    - weights: list of L filters, each (1, 1, 3, 3), applied first to last
    - size: odd int; the input is (1, 1, size, size) and so is every layer's output
    - forward(x, w, b, stride, padding) -> out; backward(dout, x, w, stride, padding) ->
      (dx, dw, db): the layer's passes (b is a zero bias of shape (1,))
    Returns:
    - grad: (1, 1, size, size), d out[0, 0, size // 2, size // 2] / d x
    """
    # BEGIN ANSWER hw1.Q8
    x = weights[0].new_zeros((1, 1, size, size))
    inputs = []
    for w in weights:
        inputs.append(x)
        x = forward(x, w, w.new_zeros(1), 1, 1)
    grad = torch.zeros_like(x)
    grad[0, 0, size // 2, size // 2] = 1.0
    for w, layer_input in zip(reversed(weights), reversed(inputs)):
        grad = backward(grad, layer_input, w, 1, 1)[0]
    return grad
    # END ANSWER


def effective_radius(grad) -> float:
    """Root-mean-square distance from the centre pixel, weighted by the squared gradient.

    Inputs: grad (1, 1, S, S) with S odd, as returned by `input_gradient`.
    """
    size = grad.shape[-1]
    offsets = torch.arange(size, dtype=torch.float64, device=grad.device) - size // 2
    distance2 = offsets[:, None] ** 2 + offsets[None, :] ** 2      # (S, S)
    energy = grad[0, 0].to(torch.float64) ** 2
    return float(((energy * distance2).sum() / energy.sum()).sqrt())


# ---------------------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------------------


def maxpool2d_forward(x, kernel_size, stride=None, padding=0):
    """Max pooling over windows of each channel.

    Inputs:
    - x: (N, C, H, W)
    - kernel_size: int or pair; stride: int or pair (defaults to kernel_size, as in
      PyTorch); padding: int or pair, implicit -inf padding
    Returns a tuple of:
    - out: (N, C, H', W')
    - cache: (x_shape, argmax (N, C, H', W') index within each window, kernel, stride, padding)
    """
    # BEGIN ANSWER hw1.Q6
    _check_rank(x, 4, "x", "(N, C, H, W)")
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    padding = _pair(padding, "padding")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"padding {padding} must be at most half the kernel {kernel}, as in PyTorch")
    _check_window(x.shape[2], x.shape[3], kernel, stride, padding)
    windows = _windows(x, kernel, stride, padding, fill=float("-inf"))  # (N, C, H', W', kh, kw)
    flat = windows.reshape(*windows.shape[:4], -1)                      # (N, C, H', W', kh*kw)
    out, argmax = flat.max(dim=-1)
    return out, (tuple(x.shape), argmax, kernel, stride, padding)
    # END ANSWER


def maxpool2d_backward(dout, cache):
    """Backward pass of `maxpool2d_forward`: each window's gradient goes to its arg-max.

    Inputs:
    - dout: (N, C, H', W')
    - cache: from `maxpool2d_forward`
    Returns:
    - dx: (N, C, H, W); a pixel that is the max of several overlapping windows receives
      the sum of their gradients.
    """
    # BEGIN ANSWER hw1.Q7
    x_shape, argmax, kernel, stride, padding = cache
    n, c, out_h, out_w = dout.shape
    kh, kw = kernel
    routed = dout.new_zeros((n, c, out_h, out_w, kh * kw))
    routed.scatter_(-1, argmax.unsqueeze(-1), dout.unsqueeze(-1))       # (N, C, H', W', kh*kw)
    cols = routed.permute(0, 1, 4, 2, 3).reshape(n, c * kh * kw, out_h * out_w)
    return col2im(cols, x_shape, kernel, stride, padding)
    # END ANSWER


# ---------------------------------------------------------------------------------------
# Batch normalization
# ---------------------------------------------------------------------------------------


def _as_rows(x):
    """(N, D) stays; (N, C, H, W) -> (N*H*W, C) so that statistics are per channel."""
    if x.dim() == 2:
        return x
    if x.dim() == 4:
        return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    raise ValueError(f"expected x of shape (N, D) or (N, C, H, W), got {tuple(x.shape)}")


def _from_rows(rows, shape):
    if len(shape) == 2:
        return rows
    n, c, h, w = shape
    return rows.reshape(n, h, w, c).permute(0, 3, 1, 2)


def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalization, per feature for (N, D) and per channel for (N, C, H, W).

    Inputs:
    - x: (N, D) or (N, C, H, W)
    - gamma, beta: (D,) or (C,) scale and shift
    - bn_param: dict with
      - mode: "train" (normalize with the batch's mean and biased variance, then update
        the running statistics) or "eval" (normalize with the running statistics)
      - eps: added to the variance (default 1e-5)
      - momentum: weight of the new batch in the running averages (default 0.1, PyTorch's
        convention: running = (1 - momentum) * running + momentum * batch)
      - running_mean, running_var: (D,) or (C,) tensors, updated in place in train mode
        (created as zeros and ones when missing); running_var stores the *unbiased*
        batch variance, as `nn.BatchNorm1d/2d` do.
    Returns a tuple of:
    - out: the shape of x
    - cache: for `batchnorm_backward`
    """
    # BEGIN ANSWER hw2.Q1
    mode = bn_param.get("mode", "train")
    if mode not in ("train", "eval"):
        raise ValueError(f"bn_param['mode'] must be 'train' or 'eval', got {mode!r}")
    rows = _as_rows(x)                                          # (M, D)
    features = rows.shape[1]
    for name, value in (("gamma", gamma), ("beta", beta)):
        if tuple(value.shape) != (features,):
            raise ValueError(f"expected {name} of shape ({features},) (one per channel of x), got {tuple(value.shape)}")
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.1)
    running_mean = bn_param.setdefault("running_mean", rows.new_zeros(features))
    running_var = bn_param.setdefault("running_var", rows.new_ones(features))
    if mode == "train":
        count = rows.shape[0]
        if count < 2:
            raise ValueError(
                "train mode needs more than one value per channel to estimate a variance; "
                "use a larger batch or mode='eval'"
            )
        mean = rows.mean(dim=0)                                 # (D,)
        var = ((rows - mean) ** 2).mean(dim=0)                  # (D,), biased: used to normalize
        running_mean.mul_(1 - momentum).add_(momentum * mean)
        running_var.mul_(1 - momentum).add_(momentum * var * count / (count - 1))
    else:
        mean, var = running_mean, running_var
    inv_std = 1.0 / torch.sqrt(var + eps)                       # (D,)
    x_hat = (rows - mean) * inv_std                             # (M, D)
    out = gamma * x_hat + beta
    cache = (mode, x_hat, gamma, inv_std, tuple(x.shape))
    return _from_rows(out, x.shape), cache
    # END ANSWER


def batchnorm_backward(dout, cache):
    """Backward pass of `batchnorm_forward`.

    Inputs:
    - dout: the shape of x
    - cache: from `batchnorm_forward`
    Returns a tuple of:
    - dx: the shape of x
    - dgamma, dbeta: (D,) or (C,)

    In train mode the mean and variance depend on every x, which gives the compact form
    dx = inv_std / M * (M * dx_hat - sum(dx_hat) - x_hat * sum(dx_hat * x_hat)).
    In eval mode they are constants and dx = gamma * inv_std * dout.
    """
    # BEGIN ANSWER hw2.Q2
    mode, x_hat, gamma, inv_std, shape = cache
    drows = _as_rows(dout)                                      # (M, D)
    dbeta = drows.sum(dim=0)
    dgamma = (drows * x_hat).sum(dim=0)
    dx_hat = drows * gamma
    if mode == "train":
        count = drows.shape[0]
        dx = inv_std / count * (count * dx_hat - dx_hat.sum(dim=0) - x_hat * (dx_hat * x_hat).sum(dim=0))
    else:
        dx = dx_hat * inv_std
    return _from_rows(dx, shape), dgamma, dbeta
    # END ANSWER


# ---------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------

DROPOUT_MODES = ("inverted", "classic")


def dropout_forward(x, p, train=True, mode="inverted", generator=None):
    """Dropout with drop probability p (PyTorch's convention; the 2014 paper's p keeps).

    Inputs:
    - x: any shape
    - p: probability of dropping each unit, in [0, 1)
    - train: training (units are dropped) or test time (none are)
    - mode: "inverted" scales kept units by 1 / (1 - p) during training and is the
      identity at test time (what `nn.Dropout` does); "classic" keeps units unscaled
      during training and multiplies everything by the keep probability (1 - p) at test
      time. Both have the same expected output. The slides write the classic test-time
      rule as `W2 * p * max(0, W1 x + b1) + b2` and call p "the probability of dropout":
      that is right only if p is the KEEP probability (the 2014 paper's p). With this
      function's p (the DROP probability, as in PyTorch) the factor is 1 - p; scaling by
      the drop probability would shrink outputs to p / (1 - p) of their training
      expectation (to a quarter at p = 0.2).
    - generator: a `torch.Generator` on x's device, for reproducible masks
    Returns a tuple of:
    - out: the shape of x
    - cache: (mask or None, scale) for `dropout_backward`
    """
    # BEGIN ANSWER hw2.Q3
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p < 1:
        raise ValueError(f"p is the drop probability and must be in [0, 1), got {p!r}")
    if mode not in DROPOUT_MODES:
        raise ValueError(f"mode must be one of {DROPOUT_MODES}, got {mode!r}")
    if not train:
        scale = 1.0 if mode == "inverted" else 1.0 - p
        return x * scale, (None, scale)
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
    scale = 1.0 / (1.0 - p) if mode == "inverted" else 1.0
    mask = keep.to(x.dtype) * scale
    return x * mask, (mask, scale)
    # END ANSWER


def dropout_backward(dout, cache):
    """Backward pass of `dropout_forward`: dx = dout * mask (train) or dout * scale (test).

    Inputs: dout, the shape of x; cache from `dropout_forward`. Returns dx, the shape of x.
    """
    # BEGIN ANSWER hw2.Q4
    mask, scale = cache
    return dout * scale if mask is None else dout * mask
    # END ANSWER


# ---------------------------------------------------------------------------------------
# Gradient checking
# ---------------------------------------------------------------------------------------


def numerical_gradient(f, x, dout, h=1e-5):
    """Centred-difference gradient of sum(f(x) * dout) with respect to x.

    Inputs:
    - f: a function of x returning a tensor shaped like dout (x is changed in place and
      restored, so f must read it afresh each call)
    - x: the tensor to differentiate against (use float64)
    - dout: upstream gradient, the shape of f(x)
    - h: step size
    Returns:
    - grad: the shape of x, grad[i] = (sum(f(x + h e_i) dout) - sum(f(x - h e_i) dout)) / 2h
    """
    grad = torch.zeros_like(x)
    flat_x, flat_grad = x.view(-1), grad.view(-1)
    for i in range(flat_x.numel()):
        original = flat_x[i].item()
        flat_x[i] = original + h
        plus = (f(x) * dout).sum()
        flat_x[i] = original - h
        minus = (f(x) * dout).sum()
        flat_x[i] = original
        flat_grad[i] = (plus - minus) / (2 * h)
    return grad


def rel_error(a, b) -> float:
    """Largest relative error max |a - b| / max(1e-8, |a| + |b|), elementwise."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return ((a - b).abs() / torch.clamp(a.abs() + b.abs(), min=1e-8)).max().item()
