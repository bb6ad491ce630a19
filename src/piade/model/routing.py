"""Dynamic routing between capsules (Sabour et al. 2017; the paper's Algorithm 1 and Eq. 3)."""

from __future__ import annotations

import torch
from torch import nn


def squash(s: torch.Tensor, *, a: float = 1.0, eps: float = 1e-7, dim: int = -1) -> torch.Tensor:
    """Eq. 3: ``v = |s|^2 / (a + |s|^2) * s / |s|``, with ``|s| = sqrt(sum s^2 + eps)``.

    The output norm lies in [0, 1); the epsilon under the square root keeps the gradient finite at
    ``s = 0`` (where the output is 0).
    """
    squared = (s * s).sum(dim=dim, keepdim=True)
    return squared / (a + squared) * s / torch.sqrt(squared + eps)


def dynamic_routing(
    u_hat: torch.Tensor, *, iterations: int, a: float = 1.0, eps: float = 1e-7
) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 1: route predictions ``u_hat`` (B, n_in, n_out, D) to n_out output capsules.

    The logits ``b`` start at zero on every call; each iteration sets ``c_i = softmax_j(b_i)``,
    ``s_j = sum_i c_ij u_hat_j|i``, ``v_j = squash(s_j)`` and ``b_ij += u_hat_j|i . v_j``.

    Returns:
        v: output capsules (B, n_out, D).
        c: the final coupling coefficients (B, n_in, n_out); each row sums to 1 over outputs.
    """
    # One copy into (B, n_out, n_in, D) makes every step below a contiguous broadcast product and
    # sum. The einsums on the (B, n_in, n_out, D) layout became strided batched matrix-vector
    # products (and outer products in the backward pass), 1.8x slower at 32 px (docs/performance.md).
    u = u_hat.transpose(1, 2).contiguous()  # (B, n_out, n_in, D)
    b = u.new_zeros(u.shape[:3])  # (B, n_out, n_in): the logits, transposed
    for iteration in range(iterations):
        c = torch.softmax(b, dim=1)  # over the outputs
        s = (c.unsqueeze(3) * u).sum(dim=2)  # (B, n_out, D): sum_i c_ij u_hat_j|i
        v = squash(s, a=a, eps=eps)  # (B, n_out, D)
        if iteration < iterations - 1:
            b = b + (u * v.unsqueeze(2)).sum(dim=3)  # u_hat_j|i . v_j
    return v, c.transpose(1, 2)


class CapsuleRouting(nn.Module):
    """Holds the transformation matrices ``W_ij`` and routes primary capsules to output vectors.

    ``u_hat_j|i = W_ij u_i`` maps each ``in_dim``-d primary capsule i to a prediction of each
    ``out_dim``-d output capsule j; :func:`dynamic_routing` then combines the predictions.
    """

    def __init__(
        self,
        num_in: int,
        in_dim: int,
        num_out: int,
        out_dim: int,
        *,
        iterations: int,
        a: float,
        eps: float,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_in, num_out, out_dim, in_dim))  # W: (n, J, D, d)
        self.iterations, self.a, self.eps = iterations, a, eps
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Orthogonal init of every ``W_ij`` (orthonormal columns, so ``|W_ij u| = |u|``)."""
        n, j, out_dim, in_dim = self.weight.shape
        tall = out_dim >= in_dim
        with torch.no_grad():
            gaussian = torch.randn(n * j, max(out_dim, in_dim), min(out_dim, in_dim))
            q, r = torch.linalg.qr(gaussian)  # q: (n*J, max, min), orthonormal columns
            q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
            q = q if tall else q.transpose(-2, -1)  # (n*J, D, d)
            self.weight.copy_(q.reshape(n, j, out_dim, in_dim))

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u_hat = torch.einsum("ijdk,bik->bijd", self.weight, u)  # (B, n, J, D)
        return dynamic_routing(u_hat, iterations=self.iterations, a=self.a, eps=self.eps)
