# Grows the field and the spacing correctly but forgets that padding moves the window's first
# input pixel into the border.
# expect: loses test_receptive_box
# %% receptive_box
def receptive_box(layers, position, input_size):
    size, jump = 1, 1
    for kernel, stride, padding in layers:
        size += (kernel - 1) * jump
        jump *= stride
    box = []
    for index, extent in zip(position, input_size):
        first = index * jump
        box.append((max(0, first), min(extent, first + size)))
    return tuple(box)
