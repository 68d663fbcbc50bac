"""Features for training: Speech Commands clips (augmented on the fly) -> kws.frontend features.

Where the time goes (measured on the development machine, default frontend, one thread, CPU time
per clip): reading a 1 s WAV ~0.4 ms, augmentation (speed/shift/volume/noise) ~0.7 ms, features
~0.9 ms -- ~2 ms per training clip, against ~25-30 ms per clip for the student's training step over
all nine operating points (default architecture) and ~5 ms for the teacher's. Data is thus ~7 % of a
student epoch and ~30 % of a teacher epoch; it is computed in the training process (or in
`workers` DataLoader processes when spare cores exist) rather than cached, because augmentation
draws are fresh every epoch. Un-augmented features -- the validation split, and the sample the
normalisation statistics come from -- are computed once per run and kept in memory.
"""

from __future__ import annotations

import numpy as np
import torch

from kws.frontend import FrontendConfig, features


class ClipFeatures(torch.utils.data.Dataset):
    """(features float32 [n_frames, F], label) for every item of a SpeechCommands split."""

    def __init__(self, clips, frontend: FrontendConfig, n_frames: int):
        self.clips = clips
        self.frontend = frontend
        self.n_frames = int(n_frames)

    def __len__(self) -> int:
        return len(self.clips)

    def set_epoch(self, epoch: int) -> None:
        self.clips.set_epoch(epoch)

    def __getitem__(self, i: int):
        audio, label = self.clips[i]
        f = features(audio, self.frontend)
        if f.shape[0] != self.n_frames:
            raise ValueError(f"clip {i}: {f.shape[0]} frames, the network expects {self.n_frames}")
        return torch.from_numpy(f), int(label)


def feature_matrix(clips, frontend: FrontendConfig, indices=None) -> tuple[np.ndarray, np.ndarray]:
    """Features of (a subset of) a split, stacked: (float32 [N, frames, F], int64 labels [N])."""
    idx = range(len(clips)) if indices is None else indices
    xs, ys = [], []
    for i in idx:
        audio, label = clips[int(i)]
        xs.append(features(audio, frontend))
        ys.append(label)
    if not xs:
        n = frontend.frames(16000)
        return np.zeros((0, n, frontend.n_features), np.float32), np.zeros(0, np.int64)
    return np.stack(xs).astype(np.float32, copy=False), np.asarray(ys, np.int64)


def normalisation(clips, frontend: FrontendConfig, max_items: int = 2000, seed: int = 0, pcen=None):
    """Per-feature mean and std (float32 [F]) over up to `max_items` un-augmented training clips
    (of their PCEN, kws/fsmn/pcen.py, when `pcen` parameters are given: each clip is one window).

    std is floored at 1e-3 so a constant feature cannot divide by zero.
    """
    n = len(clips)
    if n == 0:
        raise ValueError("the training split is empty: no clips to compute feature statistics from")
    rng = np.random.default_rng([seed, 7])
    idx = np.sort(rng.permutation(n)[:max_items])
    x, _ = feature_matrix(clips, frontend, idx)
    if pcen is not None:
        from kws.fsmn.pcen import apply
        x = apply(x, pcen)
    x = x.reshape(-1, x.shape[-1]).astype(np.float64)
    mean = x.mean(axis=0)
    std = np.maximum(x.std(axis=0), 1e-3)
    return mean.astype(np.float32), std.astype(np.float32)
