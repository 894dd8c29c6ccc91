#!/usr/bin/env bash
# Prints the path of a Python 3.12 interpreter, or explains what is missing.
# Tries python3.12 on PATH, then pyenv's 3.12 versions.
set -u
try() { "$@" -c 'import sys; assert sys.version_info[:2] == (3, 12); print(sys.executable)' 2>/dev/null; }
if p=$(try python3.12); then echo "$p"; exit 0; fi
if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.|$)' | sort -rV); do
        if p=$(PYENV_VERSION=$v try python3.12); then echo "$p"; exit 0; fi
        root=$(pyenv root)
        if p=$(try "$root/versions/$v/bin/python3.12"); then echo "$p"; exit 0; fi
    done
fi
for p in /usr/local/bin/python3.12 /usr/bin/python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3.12; do
    if q=$(try "$p"); then echo "$q"; exit 0; fi
done
echo "find-python312: no Python 3.12 found (install python3.12 or pyenv install 3.12)" >&2
exit 1
