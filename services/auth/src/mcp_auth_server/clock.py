"""Time as integer epoch seconds, the unit every stored timestamp uses."""

import time


def now() -> int:
    return int(time.time())
