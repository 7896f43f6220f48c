#!/usr/bin/env bash
# Build llama.cpp's OpenAI-compatible `llama-server` from the llama.cpp sources vendored in the
# PyPI sdist of llama-cpp-python (hash-pinned in llama-cpp-python.requirements.txt): a CPU
# build for any x86-64 (GGML_NATIVE=OFF), no network features (LLAMA_CURL/LLAMA_OPENSSL OFF).
#
#   bash scripts/llm/build_llama_server.sh     # -> var/llm/llama-server (18.5 min on 2 busy cores)
#
# Idempotent: a binary built from this exact sdist is kept. Needs cmake and a C++ compiler.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=0.3.36
OUT="${HYPERMARKER_LLAMA_SERVER:-var/llm/llama-server}"
WORK="var/llm/build/llama-cpp-python-$VERSION"
STAMP="$OUT.llama-cpp-python-$VERSION"
JOBS="${JOBS:-$(nproc)}"

if [ -x "$OUT" ] && [ -f "$STAMP" ] && "$OUT" --version >/dev/null 2>&1; then
  echo "$OUT (llama-cpp-python $VERSION) already built"
  exit 0
fi
for tool in cmake c++ python3; do
  command -v "$tool" >/dev/null || { echo "$tool not found: needed to build llama-server" >&2; exit 2; }
done

start=$(date +%s)
mkdir -p "$WORK" "$(dirname "$OUT")"
if [ ! -f "$WORK/src/vendor/llama.cpp/CMakeLists.txt" ]; then
  dl=$(mktemp -d)
  trap 'rm -rf "$dl"' EXIT
  # pip prepares the sdist's metadata (fetching its build backend, scikit-build-core) before
  # it keeps the file: about 45 s here.
  python3 -m pip download --quiet --no-deps --no-binary :all: \
    --require-hashes -d "$dl" -r scripts/llm/llama-cpp-python.requirements.txt \
    2> >(grep -v "is ignored: it is neither" >&2) || true
  sdist="$dl/llama_cpp_python-$VERSION.tar.gz"
  [ -f "$sdist" ] || { echo "could not download llama-cpp-python $VERSION" >&2; exit 1; }
  rm -rf "$WORK/src" && mkdir -p "$WORK/src"
  tar xzf "$sdist" -C "$WORK/src" --strip-components=1 "llama_cpp_python-$VERSION/vendor/llama.cpp"
fi
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
nice -n 10 cmake -S "$WORK/src/vendor/llama.cpp" -B "$WORK/build" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF >/dev/null
nice -n 10 cmake --build "$WORK/build" --target llama-server -j "$JOBS"
cp "$WORK/build/bin/llama-server" "$OUT.part" && mv "$OUT.part" "$OUT"
touch "$STAMP"
"$OUT" --version 2>&1 | head -n 2
echo "built $OUT in $(( $(date +%s) - start )) s"
