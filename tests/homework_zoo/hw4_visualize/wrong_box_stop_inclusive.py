# Returns the last pixel the unit sees as "stop" (inclusive), one short of a slice's stop.
# expect: loses test_receptive_box
# %% receptive_box
def receptive_box(layers, position, input_size):
    box = []
    for d in range(2):
        first, last = position[d], position[d]
        for kernel, stride, padding in reversed(layers):
            first = first * stride - padding
            last = last * stride - padding + kernel - 1
        box.append((max(0, first), min(input_size[d] - 1, last)))
    return tuple(box)
