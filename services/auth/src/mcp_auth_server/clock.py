"""Time as integer epoch seconds, the unit every stored timestamp uses, from one clock.

Every rule about time (expiry, lifetimes, re-check intervals) reads `now()`, so a test moves time
for the whole service by replacing this module's `time`, instead of editing rows.
"""

import time


def now() -> int:
    return int(time.time())
