"""Parse a source file for the guardrail tests.

CPython 3.11.7's ``ast.parse`` can raise ``SystemError: AST constructor recursion depth mismatch`` when the calling
thread's recursion bookkeeping was disturbed earlier in the session (seen after the Playwright tests). The file is
then parsed in a fresh interpreter and the tree handed back with pickle, so the check itself never depends on it.
"""

import ast
import pickle
import subprocess
import sys
from pathlib import Path

_FRESH = "import ast, pickle, sys; sys.stdout.buffer.write(pickle.dumps(ast.parse(open(sys.argv[1]).read())))"


def parse(path: Path) -> ast.Module:
    source = Path(path).read_text()
    try:
        return ast.parse(source)
    except SystemError:
        out = subprocess.run([sys.executable, "-c", _FRESH, str(path)], check=True, capture_output=True).stdout
        return pickle.loads(out)  # noqa: S301 - our own child process, our own file
