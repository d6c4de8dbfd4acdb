"""python -m benchmarks.peak_rss OUT -- COMMAND...: runs COMMAND and writes its peak RSS (KB) to OUT.

Linux counts the memory of the process a child was forked from in the child's ru_maxrss (exec records the
old address space's high-water mark), so a large benchmark process would inflate the job's figure. This
small process sits in between: the job is forked from it, and it exits with the job's status.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> int:
    out, sep, *command = sys.argv[1:]
    assert sep == "--" and command, __doc__
    pid = os.fork()
    if pid == 0:
        os.execvp(command[0], command)
    _, status, usage = os.wait4(pid, 0)
    Path(out).write_text(str(usage.ru_maxrss))
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
