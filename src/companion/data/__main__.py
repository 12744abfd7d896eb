"""`python -m companion.data`: fetch or verify every data set and build the binary caches.

Run by `make` before the notebooks. UCI sets missing from the local copy are listed, not fatal
(connect-4, miniboone and musk-2 have no data file in ours); any other problem is.
"""

from __future__ import annotations

import sys
import time

from companion.data import cifar, uci
from companion.data.sources import DataError


def prepare_uci() -> None:
    start = time.perf_counter()
    missing = []
    for name in uci.names():
        try:
            uci.arrays(name)
        except uci.MissingDataError:
            missing.append(name)
    ready = len(uci.names()) - len(missing)
    print(f"UCI: {ready} of {len(uci.names())} data sets verified and cached "
          f"({time.perf_counter() - start:.1f} s)")
    if missing:
        print(f"UCI: no data file for {', '.join(missing)}")
    if ready == 0:
        sys.exit("UCI: nothing could be loaded; see README.md, 'Data'")


def main() -> None:
    try:
        prepare_uci()
        cifar.prepare()  # CIFAR-10: the COMPANION_CIFAR10_JPG archive, the cache or a download
    except DataError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
