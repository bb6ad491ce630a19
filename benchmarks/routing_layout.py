"""Dynamic routing: einsums on (B, n_in, n_out, D) against broadcast sums on one transposed copy.

Times the forward and backward of three routing iterations on the shapes of a batch of 120 at
32 px and at 120 px, in alternating blocks of one run (medians). ``einsum`` is how
``piade.model.routing`` routed before the speed issue; it now copies the predictions once into
(B, n_out, n_in, D), and each step is a contiguous broadcast product and sum (batched matrix-vector
products on that layout were slower: their backward passes are outer products by ``bmm``). Both
give the same values (checked here, and against the plain algorithm in the tests).

    python benchmarks/routing_layout.py
"""

from __future__ import annotations

import statistics
import time

import torch

from piade.config import ModelConfig
from piade.model import build_model
from piade.model.routing import dynamic_routing, squash
from piade.runtime import keep_freed_memory


def einsum_routing(u_hat: torch.Tensor, *, iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    b = u_hat.new_zeros(u_hat.shape[:3])
    for iteration in range(iterations):
        c = torch.softmax(b, dim=2)
        v = squash(torch.einsum("bij,bijd->bjd", c, u_hat))
        if iteration < iterations - 1:
            b = b + torch.einsum("bijd,bjd->bij", u_hat, v)
    return v, c


def main() -> None:
    keep_freed_memory()
    torch.manual_seed(0)
    for size in (32, 120):
        model = build_model(ModelConfig(image_size=size), encoder_weights=None)
        n, j, d, _ = model.routing.weight.shape
        u_hat = torch.randn(120, n, j, d, requires_grad=True)
        fast, plain = dynamic_routing(u_hat, iterations=3), einsum_routing(u_hat, iterations=3)
        torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-6)
        times: dict[str, list[float]] = {"einsum": [], "one copy": []}
        for _ in range(8):
            for name, route in (("einsum", einsum_routing), ("one copy", dynamic_routing)):
                tic = time.perf_counter()
                route(u_hat, iterations=3)[0].sum().backward()
                times[name].append(time.perf_counter() - tic)
        old, new = (statistics.median(t[1:]) for t in times.values())
        print(
            f"{size:>4} px, u_hat {tuple(u_hat.shape)}: einsum {old * 1e3:.1f} ms, "
            f"one copy {new * 1e3:.1f} ms, {old / new:.2f}x"
        )


if __name__ == "__main__":
    main()
