"""``python -m inpainting.predict``: see :mod:`inpainting.predict.cli`."""

import sys

from inpainting.engine.cli import exit_on_interrupt

with exit_on_interrupt("python -m inpainting.predict"):  # Ctrl-C while torch loads: exit 130
    from inpainting.predict.cli import main

sys.exit(main())
