# Sourced by the other scripts: makes the project's Python environment and build settings current.
# The venv is cached outside the checkout, keyed by the requirements file's hash, so fresh clones
# (and CI) reuse it; `.venv` is a link to it.
set -euo pipefail
MT10_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MT10_CACHE=${MT10_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mt10}

mt10_ensure_venv() {
    local python=${MT10_PYTHON:-python3}
    command -v "$python" >/dev/null || { echo "mt10: $python not found; install CPython 3.10-3.13" >&2; exit 1; }
    local hash venv
    hash=$(cat "$MT10_ROOT/scripts/requirements.txt" <("$python" -c 'import sys; print(sys.version_info[:2])') | sha256sum | cut -c1-16)
    venv="$MT10_CACHE/venv-$hash"
    if [ ! -f "$venv/.complete" ]; then
        echo "mt10: creating the Python environment $venv (torch, metaworld; a few minutes, once)" >&2
        rm -rf "$venv"
        mkdir -p "$MT10_CACHE"
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$MT10_ROOT/scripts/requirements.txt"
        touch "$venv/.complete"
    fi
    if [ "$(readlink "$MT10_ROOT/.venv" 2>/dev/null)" != "$venv" ]; then
        rm -rf "$MT10_ROOT/.venv"
        ln -s "$venv" "$MT10_ROOT/.venv"
    fi
    export VIRTUAL_ENV="$venv"
    export PATH="$venv/bin:$PATH"
    # tch builds against the venv's torch; pyo3 embeds the venv's interpreter.
    export LIBTORCH_USE_PYTORCH=1
    export PYO3_PYTHON="$venv/bin/python"
}
