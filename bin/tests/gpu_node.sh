#!/usr/bin/env bash
# Runs a GPU bundle (scripts/gpu-bundle) here the way the GPU node runs it, so that the bundle
# fails here if it leans on anything of this machine that the node lacks.
#
# Usage: bin/tests/gpu_node.sh [--hide-libpython] BUNDLE OUT [launch options]
#   (the bundle's results go to OUT)
# Exit status 3, with a line on stderr: this machine cannot play the node (see below).
#
# The node is a CPython 3.12 venv holding numpy, scipy and torch. Here:
# - the venv is made from the CPython 3.12 the bundle's mt10 embeds, with numpy and scipy, and
#   cached in ~/.cache/mt10/gpu-node-<hash>;
# - its torch is a stand-in: an empty `torch` package whose lib/ is the project venv's
#   torch/lib, and an nvidia/ beside it (libtorch_cuda's rpath, $ORIGIN/../../nvidia/...). The
#   launcher only asks `import torch` where torch's folder is, and libtorch's shared libraries
#   do not depend on the Python version, so this is what the node's torch gives it. A real
#   torch for 3.12 would be a 4 GB download;
# - in a private mount namespace (`unshare --mount`), those two folders are bind-mounted from
#   the project venv, then every other Python is hidden under an empty tmpfs: the project's
#   venvs (~/.cache/mt10/venv-*: MetaWorld, mujoco, gymnasium for 3.11), pyenv's other versions
#   (3.11 among them), the site-packages of the 3.12 the venv is made from, and the system's
#   Pythons (/usr/lib/python3*, /usr/local/lib/python3*);
# - the launcher runs with an empty environment (`env -i`) but PATH = the venv's bin, /usr/bin
#   and /bin, HOME and TMPDIR in a fresh folder, and OUT.
# The base 3.12's own prefix stays visible (the venv's python runs from it, as the node's runs
# from /usr); the launcher sets PYTHONHOME rather than rely on the prefix compiled into mt10.
#
# --hide-libpython plays a node whose python3.12 links libpython in (Ubuntu's, without the
# separate libpython3.12t64): the base's libpython3.12.so.1.0 is hidden (/dev/null mounted over
# it), and the node's `python3` and `python` are wrappers that preload a private copy for Python
# alone (the venv's sitecustomize drops LD_PRELOAD, so nothing Python starts inherits it). mt10
# must then run on the bundle's own runtime.
set -euo pipefail
hide_libpython=false
[ "${1:-}" != --hide-libpython ] || { hide_libpython=true; shift; }
[ $# -ge 2 ] || { echo "usage: bin/tests/gpu_node.sh [--hide-libpython] BUNDLE OUT [launch options]" >&2; exit 2; }
bundle=$(realpath "$1")
out=$(realpath -m "$2")
shift 2
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/env.sh"
cannot() { echo "gpu_node: cannot play the GPU node here: $1" >&2; exit 3; }

python312=$(cat "$bundle/.mt10-gpu-bundle")
[ -x "$python312" ] || cannot "the bundle's CPython 3.12 ($python312) is not here"
unshare --mount true 2>/dev/null || cannot "unshare --mount is not permitted (it needs root)"
mt10_ensure_venv
project_torch=$(python -c 'import os, torch; print(os.path.dirname(torch.__file__))')
project_nvidia=$(dirname "$project_torch")/nvidia

stand_in='"""Stand-in for the GPU node'"'"'s torch (bin/tests/gpu_node.sh): lib/ is mounted over libtorch."""'
# Under --hide-libpython the node's Python preloads its libpython; what it starts must not.
site_customize='import os; os.environ.pop("LD_PRELOAD", None)'
venv=$MT10_CACHE/gpu-node-$(printf '%s\n' "$python312" "$("$python312" -V)" numpy==2.4.6 scipy==1.17.1 "$stand_in" "$site_customize" | sha256sum | cut -c1-16)
site_packages=$venv/lib/python3.12/site-packages
if [ ! -f "$venv/.complete" ]; then
    echo "gpu_node: creating the node's venv $venv (numpy, scipy)" >&2
    rm -rf "$venv"
    "$python312" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check numpy==2.4.6 scipy==1.17.1
    mkdir -p "$site_packages/torch/lib" "$site_packages/nvidia"
    echo "$stand_in" > "$site_packages/torch/__init__.py"
    echo "$site_customize" > "$site_packages/sitecustomize.py"
    touch "$venv/.complete"
fi

base=$("$python312" -c 'import sys; print(sys.base_prefix)')
hidden=("$MT10_CACHE"/venv-* "$base/lib/python3.12/site-packages")
for path in "$HOME"/.pyenv/versions/* /usr/lib/python3* /usr/local/lib/python3*; do
    [ -d "$path" ] && [ "$(realpath "$path")" != "$(realpath "$base")" ] && hidden+=("$path")
done
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
mkdir -p "$out"
node_bin=$venv/bin
libpython=$("$python312" -c 'import os, sysconfig; print(os.path.join(sysconfig.get_config_var("LIBDIR"), "libpython3.12.so.1.0"))')
if $hide_libpython; then
    node_bin=$home/node-bin
    mkdir -p "$node_bin" "$home/node-lib"
    cp "$libpython" "$home/node-lib/"
    for name in python3 python; do
        printf '#!/bin/sh\nLD_PRELOAD=%q exec %q "$@"\n' "$home/node-lib/libpython3.12.so.1.0" "$venv/bin/python3" > "$node_bin/$name"
        chmod +x "$node_bin/$name"
    done
fi
unshare --mount bash -euo pipefail -s "$venv" "$home" "$out" "$bundle" "$node_bin" "$@" <<EOF
mount --bind "$project_torch/lib" "$site_packages/torch/lib"
mount --bind "$project_nvidia" "$site_packages/nvidia"
for path in $(printf '%q ' "${hidden[@]}"); do
    mount -t tmpfs tmpfs "\$path"
done
if $hide_libpython; then
    mount --bind /dev/null $(printf '%q' "$libpython")
fi
venv=\$1 home=\$2 out=\$3 bundle=\$4 node_bin=\$5
shift 5
exec env -i PATH="\$node_bin:\$venv/bin:/usr/bin:/bin" HOME="\$home" TMPDIR="\$home" OUT="\$out" "\$bundle/launch" "\$@"
EOF
