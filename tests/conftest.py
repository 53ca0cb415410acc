import os

import pytest
import torch

# Tests run on one thread: repeatable timings on shared 2-core machines, and no
# oversubscription when pytest runs beside other work.
torch.set_num_threads(1)
os.environ.setdefault("TRANSFERKIT_QUIET", "1")


@pytest.fixture
def tiny_xy():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(96, 1, 4, 4, generator=gen)
    y = (x.flatten(1).sum(1) > 0).long()
    return x, y
