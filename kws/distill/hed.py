"""High-frequency Enhancement Distillation (HED, BiFSMN) and optional logit distillation.

For every block the student runs, its output map S (the residual stream, [N, T', C]) is pulled
towards the teacher's output map of the same block (channel prefix at narrower widths), enhanced:

    hf(T)  = T minus its 2x2 (time x channel) block means      (= one-level 2-D Haar transform with
                                                                  the low-low band dropped, inverted)
    T_hed  = hf(T) / std(hf(T)) + T / std(T)
    loss_b = || S^2 / ||S^2||  -  T_hed^2 / ||T_hed^2|| ||        (Frobenius norms over the whole
                                                                  batch tensor, as in the reference)
    HED    = sum over blocks of loss_b;   total = CE + 0.01 * HED.

std is the unbiased standard deviation over the whole batch tensor (torch.std), as in the reference
code. Maps with an odd number of frames or channels are zero-padded to even size for the Haar step
(the reference's wavelet transform uses mode="zero") and cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

HED_WEIGHT = 0.01


def haar_high(x: torch.Tensor) -> torch.Tensor:
    """High-frequency part of one-level 2-D Haar over the last two axes: x minus its 2x2 block means.

    x: [N, T, C] -> [N, T, C].
    """
    n, t, c = x.shape
    xp = F.pad(x, (0, c % 2, 0, t % 2))
    low = F.avg_pool2d(xp.unsqueeze(1), 2)                            # [N, 1, T/2, C/2] block means
    low = low.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3).squeeze(1)
    return (xp - low)[:, :t, :c]


def hed_target(t: torch.Tensor) -> torch.Tensor:
    """Teacher map enhanced with its high-frequency part: hf/std(hf) + t/std(t)."""
    hf = haar_high(t)
    return hf / hf.std() + t / t.std()


def attention_loss(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """|| s^2/||s^2|| - t^2/||t^2|| ||_2 over the whole tensors (the reference's total_loss)."""
    qs, qt = s * s, t * t
    return torch.linalg.vector_norm(qs / torch.linalg.vector_norm(qs) - qt / torch.linalg.vector_norm(qt))


def hed_loss(student_maps, teacher_targets) -> torch.Tensor:
    """Sum of attention losses over blocks; teacher_targets already enhanced (hed_target)."""
    if len(student_maps) != len(teacher_targets):
        raise ValueError(f"{len(student_maps)} student maps but {len(teacher_targets)} teacher maps")
    total = student_maps[0].new_zeros(())
    for s, t in zip(student_maps, teacher_targets):
        total = total + attention_loss(s, t)
    return total


def logit_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0):
    """Hinton KD: T^2 * KL(softmax(t/T) || softmax(s/T)), batch mean."""
    T = float(temperature)
    return F.kl_div(F.log_softmax(student_logits / T, dim=1), F.log_softmax(teacher_logits / T, dim=1),
                    reduction="batchmean", log_target=True) * (T * T)
