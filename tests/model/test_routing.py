"""Squash (Eq. 3) and dynamic routing (Algorithm 1)."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from piade.model.routing import CapsuleRouting, dynamic_routing, squash


@settings(max_examples=50, deadline=None)
@given(scale=st.floats(1e-4, 1e4), seed=st.integers(0, 2**16), a=st.floats(0.1, 10.0))
def test_squash_norm_below_one_and_direction_kept(scale: float, seed: int, a: float) -> None:
    s = torch.randn(5, 16, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    s = s * scale
    v = squash(s, a=a)
    norms = v.norm(dim=-1)
    assert (norms >= 0).all() and (norms < 1).all()
    unit = v / v.norm(dim=-1, keepdim=True)  # same direction as s (float64 keeps tiny norms)
    torch.testing.assert_close(unit, s / s.norm(dim=-1, keepdim=True))
    length = s.norm(dim=-1)
    # Eq. 3's length, with the epsilon under the square root (1e-7 by default).
    expected = length**2 / (a + length**2) * length / torch.sqrt(length**2 + 1e-7)
    torch.testing.assert_close(norms, expected, rtol=1e-9, atol=1e-12)


def test_squash_has_a_finite_gradient_at_zero() -> None:
    s = torch.zeros(3, 8, requires_grad=True)
    v = squash(s)
    assert torch.equal(v, torch.zeros(3, 8))
    v.sum().backward()
    assert s.grad is not None and torch.isfinite(s.grad).all()


def test_couplings_sum_to_one_over_outputs() -> None:
    u_hat = torch.randn(4, 30, 3, 16)
    v, c = dynamic_routing(u_hat, iterations=3)
    assert v.shape == (4, 3, 16) and c.shape == (4, 30, 3)
    torch.testing.assert_close(c.sum(dim=2), torch.ones(4, 30))


def test_one_iteration_gives_uniform_couplings() -> None:
    _, c = dynamic_routing(torch.randn(2, 10, 2, 8), iterations=1)
    torch.testing.assert_close(c, torch.full((2, 10, 2), 0.5))


def test_routing_moves_couplings_towards_agreement() -> None:
    # Every input predicts output 0 as the same vector and output 1 as noise: after routing, the
    # inputs send more of their weight to output 0, whose predictions agree.
    torch.manual_seed(0)
    agree = torch.randn(1, 1, 1, 8).expand(2, 20, 1, 8)
    noise = torch.randn(2, 20, 1, 8) * 0.5
    _, c = dynamic_routing(torch.cat([agree, noise], dim=2), iterations=3)
    assert (c[..., 0] > 0.5).all()


def test_routing_starts_from_zero_logits_on_every_call() -> None:
    layer = CapsuleRouting(12, 8, 2, 16, iterations=3, a=1.0, eps=1e-7)
    u = torch.randn(3, 12, 8)
    first, second = layer(u), layer(u)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    # The same samples in another batch give the same outputs: nothing is shared across calls.
    alone = layer(u[:1])
    torch.testing.assert_close(alone[0], first[0][:1])


def test_prediction_matrices_apply_per_capsule() -> None:
    layer = CapsuleRouting(5, 8, 2, 16, iterations=1, a=1.0, eps=1e-7)
    u = torch.randn(2, 5, 8)
    v, _ = layer(u)
    u_hat = torch.einsum("ijdk,bik->bijd", layer.weight, u)
    s = 0.5 * u_hat.sum(dim=1)  # one iteration: c = 1/2 everywhere
    torch.testing.assert_close(v, squash(s))


def _reference_routing(
    u_hat: torch.Tensor, *, iterations: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 1 written as plainly as possible, on the (B, n_in, n_out, D) layout."""
    b = torch.zeros(u_hat.shape[:3], dtype=u_hat.dtype)
    for iteration in range(iterations):
        c = torch.softmax(b, dim=2)
        v = squash(torch.einsum("bij,bijd->bjd", c, u_hat))
        if iteration < iterations - 1:
            b = b + torch.einsum("bijd,bjd->bij", u_hat, v)
    return v, c


def test_routing_equals_the_plain_algorithm_in_values_and_gradients() -> None:
    u_hat = torch.randn(3, 40, 2, 16, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(3, 2, 16, dtype=torch.float64)
    results = []
    for route in (dynamic_routing, _reference_routing):
        v, c = route(u_hat, iterations=3)
        (v * weights).sum().backward()
        results.append((v.detach(), c.detach(), u_hat.grad.clone()))
        u_hat.grad = None
    for fast, plain in zip(*results, strict=True):
        torch.testing.assert_close(fast, plain, rtol=1e-10, atol=1e-12)
