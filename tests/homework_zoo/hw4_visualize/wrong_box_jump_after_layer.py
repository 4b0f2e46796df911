# Multiplies the spacing by the layer's stride before growing the field, so a layer's own
# stride already widens its window.
# expect: loses test_receptive_box
# %% receptive_box
def receptive_box(layers, position, input_size):
    size, jump, start = 1, 1, 0.0
    for kernel, stride, padding in layers:
        jump *= stride
        size += (kernel - 1) * jump
        start += ((kernel - 1) / 2 - padding) * jump
    box = []
    for index, extent in zip(position, input_size):
        first = math.ceil(start + index * jump - (size - 1) / 2)
        box.append((max(0, first), min(extent, first + size)))
    return tuple(box)
