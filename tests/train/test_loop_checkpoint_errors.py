"""A checkpoint the loop did not write is refused in words (issue 34 item 6)."""

import pytest
import torch

from transferkit.train import CheckpointError, Phase, Stream, Trainer, classification_step


def _trainer(path):
    net = torch.nn.Linear(2, 2)
    phase = Phase(classification_step(), torch.optim.SGD(net.parameters(), lr=0.1),
                  {"train": Stream(torch.randn(8, 2), torch.randint(0, 2, (8,)), batch_size=4,
                                   seed=0)})
    return Trainer(net, phase, 2, seed=0, checkpoint=path, progress=False)


@pytest.mark.parametrize("content, message", [
    (lambda p: p.write_bytes(b"not a checkpoint"), "is not a torch file"),
    (lambda p: torch.save({"step": 1, "note": ValueError("an object")}, p),
     "holds code or Python objects"),
])
def test_resuming_from_a_foreign_checkpoint_is_refused(tmp_path, content, message):
    path = tmp_path / "checkpoint.pt"
    content(path)
    with pytest.raises(CheckpointError, match=message):
        _trainer(path).fit()
