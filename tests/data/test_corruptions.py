"""The image corruptions that make new domains: rotate, blur, add_noise, lower_resolution."""

import pytest
import torch

from transferkit.data import Domain, add_noise, blur, lower_resolution, rotate


def _dom(images):
    return Domain(images, torch.zeros(len(images), dtype=torch.int64), "toy")


def test_rotate_by_90_degrees_moves_a_pixel_to_its_rotated_place():
    img = torch.zeros(1, 1, 4, 4)
    img[0, 0, 0, 3] = 1.0  # top right
    out = rotate(_dom(img), 90).images[0, 0]
    assert out.argmax() == torch.tensor(0)  # top left after a quarter turn counter-clockwise
    assert torch.allclose(rotate(_dom(img), 0).images, img)


def test_blur_keeps_the_ink_and_spreads_it():
    img = torch.zeros(1, 1, 9, 9)
    img[0, 0, 4, 4] = 1.0
    out = blur(_dom(img), 1.0).images
    assert float(out.sum()) == pytest.approx(1.0, abs=1e-5)
    assert 0 < float(out[0, 0, 4, 4]) < 0.5 and float(out[0, 0, 4, 5]) > 0
    with pytest.raises(ValueError, match="sigma"):
        blur(_dom(img), 0.0)


def test_noise_is_seeded_and_clipped():
    img = torch.full((2, 1, 5, 5), 0.5)
    a, b = add_noise(_dom(img), 0.3, 1), add_noise(_dom(img), 0.3, 1)
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, add_noise(_dom(img), 0.3, 2).images)
    assert float(a.images.min()) >= 0 and float(a.images.max()) <= 1


def test_lower_resolution_makes_constant_blocks_of_the_block_mean():
    img = torch.arange(16.0).reshape(1, 1, 4, 4) / 16
    out = lower_resolution(_dom(img), 2).images[0, 0]
    assert torch.allclose(out[:2, :2], img[0, 0, :2, :2].mean().expand(2, 2))
    assert out.shape == (4, 4)
    with pytest.raises(ValueError, match="divisor"):
        lower_resolution(_dom(img), 3)
