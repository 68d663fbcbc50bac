"""Bop (Helwegen et al. 2019): an optimizer for binary weights without latent real-valued weights.

Each binary weight w in {-1, +1} keeps an exponential moving average of its gradient,

    m <- (1 - gamma) m + gamma g

and is flipped when the average is strong enough and agrees in sign with the weight (a positive
gradient on a +1 weight says "decrease it"):  flip  iff  w * m > tau  (i.e. |m| > tau and
sign(m) == sign(w)).  Defaults as in Larq: gamma = 1e-4, tau = 1e-8. Everything that is not a binary
weight (BN, PReLU, stem, classifier) is trained by an ordinary optimizer beside it.
"""

from __future__ import annotations

import torch


class Bop(torch.optim.Optimizer):
    """Bop over parameters holding exactly +-1 values. `last_flips`: weights flipped by the last step.

    Example:
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -1.0, 1.0]))
        >>> opt = Bop([w], gamma=0.5, tau=0.1)
        >>> w.grad = torch.tensor([1.0, 1.0, -1.0])
        >>> _ = opt.step(); w.tolist()         # m = 0.5 g: only w[0] has w*m > 0.1
        [-1.0, -1.0, 1.0]
    """

    def __init__(self, params, gamma: float = 1e-4, tau: float = 1e-8):
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"Bop: gamma must be in (0, 1], got {gamma}")
        if tau < 0.0:
            raise ValueError(f"Bop: tau must be >= 0, got {tau}")
        super().__init__(params, dict(gamma=gamma, tau=tau))
        self.last_flips = 0

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        flips = 0
        for group in self.param_groups:
            gamma, tau = group["gamma"], group["tau"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "m" not in state:
                    state["m"] = torch.zeros_like(p)
                m = state["m"]
                m.mul_(1.0 - gamma).add_(p.grad, alpha=gamma)
                flip = (p * m) > tau
                p.copy_(torch.where(flip, -p, p))
                flips += int(flip.sum())
        self.last_flips = flips
        return loss
