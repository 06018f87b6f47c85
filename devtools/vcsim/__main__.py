"""`python -m devtools.vcsim build` prints the built binary's path; `python -m devtools.vcsim run [flags]` builds it
and execs it."""

import os
import sys

from devtools.vcsim import build_vcsim

if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "build"
    binary = build_vcsim()
    if command == "build":
        print(binary)
    elif command == "run":
        os.execv(binary, [str(binary), *sys.argv[2:]])  # noqa: S606 - our own binary, our own arguments
    else:
        sys.exit(f"usage: python -m devtools.vcsim build|run [vcsim flags]; not {command!r}")
