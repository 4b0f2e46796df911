# Correct: walks from the unit back to the input one layer at a time, mapping the range of
# units [first, last] to the range of inputs their windows read.
# expect: full marks
# %% receptive_box
def receptive_box(layers, position, input_size):
    box = []
    for index, extent in zip(position, input_size):
        first, last = index, index
        for kernel, stride, padding in reversed(layers):
            first = first * stride - padding
            last = last * stride - padding + kernel - 1
        box.append((max(first, 0), min(last + 1, extent)))
    return tuple(box)
