def receptive_box(layers, position, input_size):
    field = jump = 1
    offset = 0.0
    for kernel, stride, pad in layers:
        offset = offset + jump * ((kernel - 1) / 2 - pad)
        field = field + jump * (kernel - 1)
        jump = jump * stride

    def clip(i, limit):
        start = math.ceil(offset + jump * i - (field - 1) / 2)
        return max(start, 0), min(start + field, limit)

    return tuple(clip(i, limit) for i, limit in zip(position, input_size))
