"""Training for kws: float D-FSMN teacher, thinnable binary student, HED distillation, Bop, export.

Everything here needs the optional ``[train]`` extra (torch); importing this package does not
import torch (the submodules do), so ``kws --help`` stays fast.

Modules:
    modules   torch networks mirroring kws/fsmn/config.py exactly (teacher and binary student)
    hed       High-frequency Enhancement Distillation loss (BiFSMN) and optional logit KD
    bop       the Bop optimizer for binary weights
    data      features from (augmented) Speech Commands clips, normalisation stats, caches
    export    student -> .kws (BN and scales folded, integer thresholds derived exactly)
    train     the training loop (teacher, then student), checkpoints, --resume, DDP
    evaluate  accuracy per operating point, confusion matrix, streaming FRR at N FA/h
    toydata   tiny generated data sets in the Speech Commands layout (tests, smoke runs)
    cli       the `kws train`, `kws eval`, `kws export` subcommands
"""
