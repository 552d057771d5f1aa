"""A scalar with a gradient: the book's tiny automatic differentiation (ch. 6.1, ``NumberWithGrad``).

A :class:`NumberWithGrad` remembers the values it was made from and how (``"add"`` or ``"mul"``);
``backward()`` walks back with the chain rule, and a value used more than once *accumulates* the gradients
that reach it. Unlike the book's, ``backward`` resets the graph's gradients first (calling it twice does not
double them) and visits each value once, in reverse topological order.

>>> a = NumberWithGrad(3)
>>> e = (a * 4 + 3) * (a + 2)
>>> e.backward()
>>> a.grad
35.0
"""

from __future__ import annotations

from numbers import Real


class NumberWithGrad:
    """A real number that records its inputs, so that ``backward`` can find ``d(result)/d(self)``.

    ``num`` and ``grad`` are Python floats (``grad`` is None until a ``backward`` reaches it). Supports ``+``
    and ``*`` with another NumberWithGrad or a real number, on either side.

    Raises:
      TypeError: a value that is not a real number (also through ``+`` / ``*``).
    """

    def __init__(self, num: Real, depends_on: tuple = (), creation_op: str = ""):
        if isinstance(num, NumberWithGrad) or not isinstance(num, Real):
            raise TypeError(f"NumberWithGrad holds a real number, got {num!r}")
        self.num = float(num)
        self.grad: float | None = None
        self.depends_on = tuple(depends_on)
        self.creation_op = creation_op

    def __repr__(self) -> str:
        return f"NumberWithGrad({self.num}, grad={self.grad})"

    def __add__(self, other) -> NumberWithGrad:
        other = ensure_number(other)
        return NumberWithGrad(self.num + other.num, (self, other), "add")

    def __mul__(self, other) -> NumberWithGrad:
        other = ensure_number(other)
        return NumberWithGrad(self.num * other.num, (self, other), "mul")

    __radd__ = __add__
    __rmul__ = __mul__

    def _local_grads(self) -> tuple[float, ...]:
        """d(self)/d(input) for each input: 1 and 1 for a sum; the other factor for a product."""
        if self.creation_op == "add":
            return (1.0, 1.0)
        if self.creation_op == "mul":
            a, b = self.depends_on
            return (b.num, a.num)
        return ()

    def backward(self, grad: float = 1.0) -> None:
        """Set ``.grad`` of this value and every value it depends on to ``d(self)/d(value) * grad``."""
        order, seen, stack = [], set(), [(self, False)]
        while stack:  # iterative depth-first post-order: every input lands in `order` before its results
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((parent, False) for parent in node.depends_on if id(parent) not in seen)
        for node in order:
            node.grad = 0.0
        self.grad = float(grad)
        for node in reversed(order):
            for parent, local in zip(node.depends_on, node._local_grads(), strict=True):
                parent.grad += local * node.grad  # accumulate: a value used twice gets both paths


def ensure_number(x) -> NumberWithGrad:
    """``x`` itself if it is a NumberWithGrad, else a constant NumberWithGrad holding it (book ch. 6).

    Raises:
      TypeError: ``x`` is neither a NumberWithGrad nor a real number.
    """
    return x if isinstance(x, NumberWithGrad) else NumberWithGrad(x)
