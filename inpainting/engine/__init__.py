"""The training engine, which knows no task: the ``Trainer`` loop (``trainer``), checkpoints
(``checkpoint``), the base config (``config``, ``optim``), the run set-up (``run``), resume rules
(``resume``), DDP helpers (``distributed``), stop signals, errors and exit codes (``errors``,
``cli``), the seam a task implements (``task``), and the one image reader every layer uses
(``images``).

Import the submodule you need; this package imports nothing, so that loading one part of the
engine does not load the rest.
"""
