"""The fork server's last preload: freeze what it has imported, so forked processes share it.

Every object the fork server imported lives in pages that its children share copy-on-write. The
cyclic garbage collector of each child would walk all of them and dirty their pages (each
collection writes to the objects it visits), turning shared memory into a private copy per job
or model server. `gc.freeze()` moves them out of the collector's reach (Python's docs recommend
it before fork for this reason).
"""

import gc

gc.freeze()
