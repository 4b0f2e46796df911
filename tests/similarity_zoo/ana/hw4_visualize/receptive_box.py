def receptive_box(layers, position, input_size):
    # r = field size, j = jump, c = centre of the first unit
    r, j, c = 1, 1, 0.0
    for k, s, p in layers:
        r += (k - 1) * j
        c += ((k - 1) / 2 - p) * j
        j *= s
    result = []
    for idx, n in zip(position, input_size):
        lo = math.ceil(c + idx * j - (r - 1) / 2)
        result.append((max(0, lo), min(n, lo + r)))
    return tuple(result)
