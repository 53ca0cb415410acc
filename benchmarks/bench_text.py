"""Cost of a text fine-tuning step: transferkit's MiniLM backbone in transferkit's loop
against a hand-written loop over transformers' own model, and a frozen encoder's cached
features against running the encoder every step.

Fine-tuning: both train all-MiniLM-L6-v2 (the packaged weights) with mean pooling and a
linear head on the same batches of sentences with AdamW (lr 2e-5); ours is
``create_backbone("minilm-l6")`` trained by ``transferkit.train.fit``, the hand-written
loop calls ``transformers.AutoModel`` with the tokenizer's attention mask, pools, and
steps. Target: ours at >= 0.9x the hand-written loop's speed (issue 32).

Linear probe: a frozen encoder's pooled features computed once and the head trained on
them, against the head trained through the encoder at every step (what a frozen-encoder
arm would cost uncached). Ratios are measured side by side in one run (median of
interleaved repeats, one compute thread).

    python benchmarks/bench_text.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from transferkit.nets import create_backbone
from transferkit.nets.text import minilm_folder
from transferkit.train import Stream, classification_step, fit, seeded

WORDS = ("the film was a moving and funny story of love loss and hope with great acting "
         "but a dull slow plot that never quite worked for me in the end").split()


def sentences(n: int, seed: int = 0) -> list[str]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(6, 30, (n,), generator=g)
    return [" ".join(WORDS[int(i)] for i in torch.randint(0, len(WORDS), (int(k),),
                                                           generator=g)) for k in lengths]


def ours(ids: torch.Tensor, y: torch.Tensor, steps: int, batch: int) -> float:
    with seeded(0):
        net = create_backbone("minilm-l6", n_classes=2, max_length=ids.shape[1])
    opt = torch.optim.AdamW(net.parameters(), lr=2e-5)
    stream = Stream(ids, y, batch_size=batch, seed=1)
    start = time.perf_counter()
    fit(net, classification_step(), {"train": stream}, opt, steps, progress=False)
    return time.perf_counter() - start


class _Hand(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        self.encoder = transformers.AutoModel.from_pretrained(
            str(minilm_folder()), local_files_only=True, add_pooling_layer=False)
        self.head = nn.Linear(384, 2)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(h.dtype)
        return self.head((h * m).sum(1) / m.sum(1))


def hand(ids: torch.Tensor, y: torch.Tensor, steps: int, batch: int) -> float:
    with seeded(0):
        net = _Hand()
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-5)
    stream = Stream(ids, y, batch_size=batch, seed=1)
    start = time.perf_counter()
    for step in range(steps):
        x, t = stream.batch(step)
        mask = x != 0
        n = int(mask.sum(1).max())  # the tokenizer's padding to the batch's longest
        loss = F.cross_entropy(net(x[:, :n], mask[:, :n].long()), t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def probe(ids: torch.Tensor, y: torch.Tensor, steps: int, batch: int, cached: bool) -> float:
    net = create_backbone("minilm-l6", n_classes=2, max_length=ids.shape[1]).eval()
    opt = torch.optim.SGD(net.head.parameters(), lr=0.1)
    start = time.perf_counter()
    if cached:
        with torch.no_grad():
            feats = torch.cat([net.features(ids[i:i + 128]) for i in range(0, len(ids), 128)])
        stream = Stream(feats, y, batch_size=batch, seed=1)
        fit(net.head, classification_step(), {"train": stream}, opt, steps, progress=False)
    else:
        for p in net.features.parameters():
            p.requires_grad_(False)
        stream = Stream(ids, y, batch_size=batch, seed=1)
        fit(net, classification_step(), {"train": stream}, opt, steps, progress=False)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--probe-epochs", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    texts = sentences(args.texts)
    ids = create_backbone("minilm-l6", max_length=64).input_spec.preprocess(texts)
    y = torch.tensor([i % 2 for i in range(len(texts))])
    hand_t, ours_t = [], []
    for _ in range(args.rounds):
        hand_t.append(hand(ids, y, args.steps, args.batch))
        ours_t.append(ours(ids, y, args.steps, args.batch))
    h, o = statistics.median(hand_t), statistics.median(ours_t)
    print(f"fine-tuning MiniLM, {args.steps} AdamW steps of {args.batch} sentences: "
          f"hand-written {1000 * h / args.steps:.0f} ms/step, ours "
          f"{1000 * o / args.steps:.0f} ms/step; ours at {h / o:.2f}x the hand-written "
          f"loop's speed (target >= 0.9x: {'met' if h / o >= 0.9 else 'not met'})")
    steps = max(1, args.probe_epochs * len(texts) // args.batch)
    slow = statistics.median(probe(ids, y, steps, args.batch, False)
                             for _ in range(max(1, args.rounds - 1)))
    fast = statistics.median(probe(ids, y, steps, args.batch, True)
                             for _ in range(max(1, args.rounds - 1)))
    print(f"linear probe, {steps} steps on {len(texts)} sentences: cached features "
          f"{fast:.2f} s, encoder every step {slow:.2f} s; caching {slow / fast:.1f}x faster")


if __name__ == "__main__":
    main()
