#!/usr/bin/env bash
# The stack on this machine until the AppHost (issue 4) replaces this script: two simulated engines and the
# router on http://localhost:8080. Ctrl-C stops all three (by their own process ids).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${MODEL:-meta-llama/Llama-3.1-8B-Instruct}"
ROUTER_PORT="${ROUTER_PORT:-8080}"
ROUTING="${ROUTING:-leastload}"
PRESET="${PRESET:-h100-8b}"

dotnet build VllmStack.sln -c Release -nologo -v quiet

pids=()
cleanup() {
  trap - EXIT INT TERM
  if ((${#pids[@]} > 0)); then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

for port in 8100 8101; do
  dotnet VllmStack.EngineSim/bin/Release/net10.0/VllmStack.EngineSim.dll "$MODEL" --port "$port" --latency-preset "$PRESET" &
  pids+=($!)
done
dotnet VllmStack.Router/bin/Release/net10.0/VllmStack.Router.dll --port "$ROUTER_PORT" \
  --static-backends http://127.0.0.1:8100,http://127.0.0.1:8101 --routing-logic "$ROUTING" &
pids+=($!)

echo "router: http://localhost:$ROUTER_PORT (model $MODEL, $ROUTING; engines on 8100 and 8101). Ctrl-C stops everything."
wait -n "${pids[@]}"
