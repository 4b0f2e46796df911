def augment(images, labels, generator):
    # decide everything first, then build each image
    count = images.shape[0]
    size_h, size_w = images.shape[2], images.shape[3]
    mirror = torch.rand(count, generator=generator) < 0.5
    shift = torch.randint(0, 5, (count, 2), generator=generator)
    result = []
    for index in range(count):
        picture = images[index]
        if mirror[index]:
            picture = picture.flip(2)
        canvas = images.new_zeros(picture.shape[0], size_h + 4, size_w + 4)
        canvas[:, 2:size_h + 2, 2:size_w + 2] = picture
        dy, dx = shift[index].tolist()
        result.append(canvas[:, dy:dy + size_h, dx:dx + size_w])
    return torch.stack(result), labels
