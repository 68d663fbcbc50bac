"""SpecAugment-style masks on a batch of features (Park et al. 2019, time and frequency masking).

    x = spec_masks(x, fill=net.feat_mean, masks=2, generator=g)
    x = Masked(x, spec_keep(x.shape, masks=2, generator=g))   # PCEN networks: masks after PCEN

`masks` time masks of 0..`max_time` frames and `masks` frequency masks of 0..`max_freq` features
per clip, filled with `fill` (the network's per-feature input mean, i.e. 0 after normalisation, so
a mask reads as "nothing unusual here" rather than as silence). A network with PCEN of each window
(arch input_norm "pcen") cannot take masks on its dB input: PCEN would read a band filled with a
constant as a step to a loud or a silent level. It gets `Masked(x, keep)` instead and applies
`keep` after its normalisation (0 there is the mean: the same "nothing unusual"). Every draw comes from `generator`
(a torch.Generator the trainer seeds from (seed, epoch, step, rank)): a resumed run masks alike.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from kws.errors import KwsError


class Masked(NamedTuple):
    """Features [B, T, F] and where to keep them (bool, same shape): masks applied after the
    network's input normalisation (kws.distill.modules.FSMN.stem_input)."""
    features: torch.Tensor
    keep: torch.Tensor


def spec_masks(x: torch.Tensor, fill: torch.Tensor, masks: int = 2, max_time: int | None = None,
               max_freq: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """x [B, T, F] -> a masked copy; max_time / max_freq default to 10 % of T and 15 % of F."""
    keep = spec_keep(x.shape, masks, max_time, max_freq, generator)      # validates the shape too
    if masks == 0 or x.shape[0] == 0:
        return x
    return torch.where(keep, x, fill.to(x.dtype).expand_as(x))


def spec_keep(shape, masks: int = 2, max_time: int | None = None, max_freq: int | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """bool [B, T, F]: False inside the time and frequency masks of each clip (spec_masks' draws)."""
    if len(shape) != 3:
        raise KwsError(f"spec_masks: expected features [B, T, F], got shape {tuple(shape)}")
    if masks < 0:
        raise KwsError(f"spec_masks: masks must be >= 0, got {masks}")
    b, t, f = shape
    if masks == 0 or b == 0:
        return torch.ones(b, t, f, dtype=torch.bool)
    max_time = max(1, t // 10) if max_time is None else int(max_time)
    max_freq = max(1, (f * 3) // 20) if max_freq is None else int(max_freq)
    keep = torch.ones(b, t, f, dtype=torch.bool)
    for size, limit, axis in ((t, max_time, 1), (f, max_freq, 2)):
        width = torch.randint(0, limit + 1, (b, masks), generator=generator)
        start = (torch.rand(b, masks, generator=generator) * (size - width + 1)).long()
        pos = torch.arange(size)
        hit = ((pos[None, None, :] >= start[..., None])
               & (pos[None, None, :] < (start + width)[..., None])).any(1)      # [B, size]
        keep &= ~(hit[:, :, None] if axis == 1 else hit[:, None, :])
    return keep
