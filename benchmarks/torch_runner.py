"""PyTorch's rows: the same models (:mod:`benchmarks.torch_models`) from the same weights on the same batches.

``torch``: eager, on the CPU or (``--device gpu``) on CUDA. ``torch-graphs`` (CUDA only): the whole training
step (forward, backward, optimizer update, the LSTM's carried start state) captured once per batch shape as a
CUDA graph (``torch.cuda.graph``, PyTorch's "whole network capture") and replayed each step after copying the
batch into the graph's input tensors. The capture's warm-up steps change the weights, so the weights, optimizer
state and start state are restored afterwards: every implementation starts unit 0 from the same point. A unit
ends with ``torch.cuda.synchronize()`` before the clock stops.
"""

from __future__ import annotations

import time

from . import torch_models
from .inputs import load_params
from .workloads import WORKLOADS


class TorchRunner:
    """One PyTorch implementation of workload ``name`` on the inputs ``data`` (the .npz); ``run(u)`` trains unit
    ``u`` and returns its losses."""

    def __init__(self, name, data, impl, device="cpu"):
        import torch
        import torch.nn.functional as F

        self.torch, self.F, self.w, self.compile_s = torch, F, WORKLOADS[name], None
        self.cuda = device == "gpu"
        dev = self.dev = torch.device("cuda" if self.cuda else "cpu")
        params = load_params(data)
        if self.w.recurrent:
            h = params[0]["W_v"].shape[0]
            self.lstm, self.Wv, self.Bv = torch_models.lstm(torch, params[0], dev)
            self.params = [*(q for q in self.lstm.parameters() if q.requires_grad), self.Wv, self.Bv]
            self.sums = [torch.zeros_like(q) for q in self.params]
            self.state = (torch.zeros(1, h, device=dev), torch.zeros(1, h, device=dev))  # updated in place
            self.eye = torch.eye(self.w.vocab, device=dev)  # one-hot by indexing: no host check, capturable
            xid, yid = torch.from_numpy(data["xid"]).long().to(dev), torch.from_numpy(data["yid"]).long().to(dev)
            self.batches = lambda u: zip(xid[u], yid[u], strict=True)
            self.step = self._lstm_step
        else:
            self.model = torch_models.sequential(name, torch.nn).to(dev)
            torch_models.copy_weights(torch, self.model, params, dev)
            self.params = list(self.model.parameters())
            momentum = 0.9 if self.w.optimizer == "momentum" else 0.0
            self.opt = torch.optim.SGD(self.params, lr=self.w.lr, momentum=momentum)
            self.X, self.Y = torch.from_numpy(data["X"]).to(dev), torch.from_numpy(data["Y"]).to(dev)
            self.targets = self.Y.argmax(1) if self.w.loss == "ce" else self.Y
            self.perm = torch.from_numpy(data["perm"]).to(dev)
            self.batches = self._dense_batches
            self.step = self._dense_step
        self.graphs = None
        if impl == "torch-graphs":
            start = time.perf_counter()
            self._capture()
            self.compile_s = time.perf_counter() - start  # warm-up and capture: this runner's "compilation"

    def _dense_batches(self, u):
        b = self.w.batch
        for perm in self.perm[u]:
            X, target = self.X[perm], self.targets[perm]
            for i in range(0, len(X), b):
                yield X[i : i + b], target[i : i + b]

    def _dense_step(self, x, target):
        self.opt.zero_grad(set_to_none=True)
        z = self.model(x)
        if self.w.loss == "ce":
            loss = self.F.cross_entropy(z, target)
        else:
            loss = ((z - target) ** 2).sum() / len(z)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def _lstm_step(self, x_ids, y_ids):
        torch, F, v = self.torch, self.F, self.w.vocab
        lr, eps, batch = self.w.lr, 1e-7, len(x_ids)
        for q in self.params:
            q.grad = None
        h0, c0 = (s.expand(batch, -1)[None].contiguous() for s in self.state)
        hs, (h, c) = self.lstm(self.eye[x_ids], (h0, c0))
        loss = F.cross_entropy(F.linear(hs, self.Wv, self.Bv).reshape(-1, v), y_ids.reshape(-1), reduction="sum")
        loss.backward()
        grads = [q.grad for q in self.params]
        with torch.no_grad():  # the book's clipping, then the book's AdaGrad: s += eps + g^2; p -= lr g / sqrt(s)
            torch._foreach_clamp_min_(grads, -2.0)
            torch._foreach_clamp_max_(grads, 2.0)
            torch._foreach_addcmul_(self.sums, grads, grads)
            torch._foreach_add_(self.sums, eps)
            torch._foreach_addcdiv_(self.params, grads, torch._foreach_sqrt(self.sums), value=-lr)
            self.state[0].copy_(h[0].mean(0, keepdim=True))  # the next batch starts from the mean state
            self.state[1].copy_(c[0].mean(0, keepdim=True))
        return loss.detach() / y_ids.numel()

    def _mutable(self):
        """Every tensor a step changes: weights, optimizer state, the LSTM's start state."""
        if hasattr(self, "opt"):
            return self.params + [b for s in self.opt.state.values() for b in s.values() if self.torch.is_tensor(b)]
        return self.params + self.sums + list(self.state)

    def _capture(self):
        """Capture one CUDA graph per batch shape (PyTorch's whole-network capture recipe), then restore."""
        torch = self.torch
        if not self.cuda:
            raise ValueError("torch-graphs needs a CUDA device (--device gpu)")
        examples = {}
        for x, target in self.batches(0):
            examples.setdefault(tuple(x.shape), (x.clone(), target.clone()))
        saved = [q.detach().clone() for q in self._mutable()]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up on a side stream, as the recipe asks (creates optimizer state)
            for _ in range(3):
                for x, target in examples.values():
                    self.step(x, target)
        torch.cuda.current_stream().wait_stream(stream)
        momentum = self._mutable()[len(saved) :]  # SGD's momentum buffers, absent before warm-up
        self.graphs = {}
        for shape, (x, target) in examples.items():
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                loss = self.step(x, target)
            self.graphs[shape] = (graph, x, target, loss)
        with torch.no_grad():
            for q, s in zip(self._mutable()[: len(saved)], saved, strict=True):
                q.copy_(s)
            for b in momentum:  # a zero buffer makes the first update equal to PyTorch's first step (buf = g)
                b.zero_()
        torch.cuda.synchronize()

    def run(self, u):
        torch, out = self.torch, []
        for x, target in self.batches(u):
            if self.graphs is None:
                out.append(self.step(x, target))
            else:
                graph, sx, st, loss = self.graphs[tuple(x.shape)]
                sx.copy_(x)
                st.copy_(target)
                graph.replay()
                out.append(loss.clone())
        if self.cuda:
            torch.cuda.synchronize()
        return [torch.stack(out).cpu().numpy()]
