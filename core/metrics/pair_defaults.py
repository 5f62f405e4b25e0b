"""The per-pair faithfulness check's defaults (:mod:`core.metrics.pair_faithfulness`).

Kept apart from the check, which needs torch, so that the command line's parser
can show them in its help without importing it.
"""

from __future__ import annotations

import math

DEFAULT_GRID = 10  # 10 x 10 cells: 15 px on a 150 px dlib chip, about an eye's width
DEFAULT_STEP_CELLS = 4  # 25 steps from the whole face to none of it
DEFAULT_RANDOM_ORDERS = 30
ALPHA = 0.05
# "Pair-specific" needs the chance that a map not about this pair beats all K
# other-face maps, 1 / (K + 1), to be at most ALPHA: K >= 19.  With fewer the
# check still runs and says what it found, but cannot call a map pair-specific.
MIN_OTHER_MAPS = math.ceil(1 / ALPHA) - 1
