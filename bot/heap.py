"""Garbage collection settled for a long-running process.

Python's cyclic collector periodically walks every tracked object, and a bot that has
loaded its modules, the topic pack and the database metadata holds a few hundred
thousand of them for good. Ingest allocates fast, so those walks cost ~10% of storing.
Once startup is done, `settle` moves what is loaded out of the collector's sight
(gc.freeze) and lets the youngest generation grow larger between collections.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # allocations between collections of the youngest generation


def settle() -> None:
    """Call once startup is done; calling again also freezes what was loaded since."""
    gc.collect()  # garbage frozen now would never be freed
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
