"""``reasonbank``: the command line, the same one as the Rust ``reasonbank`` binary and the npm
package's bin (the Rust CLI runs from the wheel's native module; no Rust toolchain needed).

``reasonbank --help`` lists the commands. Exit status: 0 success, 1 error, 2 bad usage
(including bad values), 3 the memory, agent or root asked about does not exist. The model runs
on the ``onnxruntime`` package's runtime unless ``ORT_DYLIB_PATH`` names another.
"""

from __future__ import annotations

import sys
from typing import List, Optional

from . import _native


def main(argv: Optional[List[str]] = None) -> None:
    """Runs one command and exits with its status."""
    args = sys.argv[1:] if argv is None else argv
    # Importing the package set its runtime (the `onnxruntime` wheel's) for this process.
    sys.stdout.flush()
    code = _native.run_cli(["reasonbank", *args])
    sys.exit(code)


if __name__ == "__main__":
    main()
