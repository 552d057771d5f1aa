"""The workloads' models in PyTorch, as a PyTorch user writes them, with fdl's initial weights copied in.

Layouts: a dense ``W`` (in, out) becomes ``nn.Linear``'s (out, in); a conv kernel (in, out, k, k) becomes
``nn.Conv2d``'s (out, in, k, k) (fdl's conv2d has no bias, stride 1, "same" padding); the LSTM's gates f, i, c,
o of ``W`` (in + hidden, hidden) become ``nn.LSTM``'s i, f, g, o, with one bias per gate (``bias_hh`` zero and
frozen).
"""

from __future__ import annotations

import numpy as np


def sequential(name: str, nn):
    """W1, W2, W3, W5 as an ``nn.Sequential`` (:mod:`benchmarks.workloads` has them in fdl)."""

    def conv(c_in, c_out):
        return nn.Conv2d(c_in, c_out, 5, padding=2, bias=False)

    build = {
        "W1": lambda: [nn.Linear(784, 89), nn.Tanh(), nn.Linear(89, 10)],
        "W2": lambda: [conv(1, 32), nn.Tanh(), nn.Flatten(), nn.Linear(25088, 10)],
        "W3": lambda: [
            conv(1, 16),
            nn.Tanh(),
            conv(16, 8),
            nn.Tanh(),
            nn.Flatten(),
            nn.Linear(6272, 32),
            nn.Tanh(),
            nn.Linear(32, 10),
        ],
        "W5": lambda: [nn.Linear(13, 13), nn.Sigmoid(), nn.Linear(13, 13), nn.Sigmoid(), nn.Linear(13, 1)],
    }
    return nn.Sequential(*build[name]())


def copy_weights(torch, model, params, device) -> None:
    """fdl's ``params`` (one dict per layer) into ``model``'s layers with weights, in order."""
    layers = [m for m in model if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]
    if len(layers) != len(params):
        raise ValueError(f"the PyTorch model has {len(layers)} layers with weights, fdl's {len(params)}")
    with torch.no_grad():
        for m, p in zip(layers, params, strict=True):
            W = np.transpose(p["W"], (1, 0, 2, 3)) if isinstance(m, torch.nn.Conv2d) else p["W"].T
            m.weight.copy_(_tensor(torch, W, device))
            if m.bias is not None:
                m.bias.copy_(_tensor(torch, p["B"][0], device))


def lstm(torch, p, device):
    """W4: ``(nn.LSTM, projection weight, projection bias)`` from fdl's LSTM layer params ``p``."""
    h, v = p["W_v"].shape
    gates = ("i", "f", "c", "o")
    cell = torch.nn.LSTM(v, h, batch_first=True).to(device)
    with torch.no_grad():
        cell.weight_ih_l0.copy_(_tensor(torch, np.concatenate([p[f"W_{g}"][:v] for g in gates], 1).T, device))
        cell.weight_hh_l0.copy_(_tensor(torch, np.concatenate([p[f"W_{g}"][v:] for g in gates], 1).T, device))
        cell.bias_ih_l0.copy_(_tensor(torch, np.concatenate([p[f"B_{g}"] for g in gates], 1)[0], device))
        cell.bias_hh_l0.zero_()
    cell.bias_hh_l0.requires_grad_(False)  # fdl has one bias per gate
    Wv = _tensor(torch, p["W_v"].T, device).requires_grad_()
    Bv = _tensor(torch, p["B_v"][0], device).requires_grad_()
    return cell, Wv, Bv


def _tensor(torch, a, device):
    return torch.tensor(np.ascontiguousarray(a), device=device)
