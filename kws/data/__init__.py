"""Speech data for kws: Speech Commands-layout folders (read, augment) and `kws data synth`.

Public API (imported lazily, so `import kws.data` stays cheap):
    TASKS, task_labels(task, words=None)        -- kws.data.tasks
    SpeechCommands(root, split, task, ...)      -- kws.data.speech_commands
    Augment(noise, ...)                         -- kws.data.augment
    load_wav(path), fit_length(x)               -- kws.data.audio
    which_set(filename)                         -- kws.data.layout
    SynthOptions, synthesize(options)           -- kws.data.synth
"""

from __future__ import annotations

import importlib

from kws.data.tasks import KEYWORDS_12, SILENCE, TASKS, UNKNOWN, V1_WORDS, V2_WORDS, task_labels

_LAZY = {
    "SpeechCommands": "kws.data.speech_commands",
    "Augment": "kws.data.augment",
    "load_wav": "kws.data.audio",
    "fit_length": "kws.data.audio",
    "which_set": "kws.data.layout",
    "SynthOptions": "kws.data.synth",
    "synthesize": "kws.data.synth",
}

__all__ = ["TASKS", "task_labels", "KEYWORDS_12", "UNKNOWN", "SILENCE", "V1_WORDS", "V2_WORDS",
           *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kws.data' has no attribute {name!r}")
