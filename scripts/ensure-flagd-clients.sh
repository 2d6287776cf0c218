#!/usr/bin/env bash
# Installs and builds the flagd conformance clients (conformance/clients/): OpenFeature's flagd
# providers for Node (npm ci from the committed package-lock.json) and Java (mvn package of
# conformance/clients/java into target/flagd-client.jar). Quick when nothing changed: each
# client is redone only when the hash of its inputs (lockfile, pom, sources, tool versions)
# differs from the stamp under $HOME/.cache/flagsync/flagd-clients. Needs node >= 20 with npm,
# and Java >= 17 with Maven; a missing tool is an error that says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/flagsync/flagd-clients"
mkdir -p "$CACHE"

need() { # tool, what to install
  command -v "$1" >/dev/null 2>&1 || { echo "ensure-flagd-clients: $1 is missing: install $2" >&2; exit 1; }
}
need node "Node.js 20 or newer (with npm)"
need npm "npm (Node.js 20 or newer)"
need java "a Java 17+ JDK (Debian: openjdk-17-jdk-headless)"
need mvn "Maven (Debian: maven)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { echo "ensure-flagd-clients: node $(node -v) is too old: the flagd provider needs node >= 20" >&2; exit 1; }


# Node: npm ci whenever package.json, the lockfile or the node version changed.
NODE_DIR=conformance/clients/node
node_hash=$( { cat "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json"; node -v; } | sha256sum | cut -c1-16)
if [ "$(cat "$CACHE/node.stamp" 2>/dev/null)" != "$node_hash" ] || [ ! -d "$NODE_DIR/node_modules/@openfeature/flagd-provider" ]; then
  echo "ensure-flagd-clients: npm ci in $NODE_DIR"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$node_hash" > "$CACHE/node.stamp"
fi

# Java: mvn package whenever the pom, a source file or the JDK changed. The built jar is kept
# in the cache too, so a fresh clone with the same inputs only copies it.
JAVA_DIR=conformance/clients/java
JAR="$JAVA_DIR/target/flagd-client.jar"
java_hash=$( { cat "$JAVA_DIR/pom.xml"; find "$JAVA_DIR/src" -type f | LC_ALL=C sort | xargs cat; java -version 2>&1; } | sha256sum | cut -c1-16)
if [ ! -f "$JAR" ] || [ "$(cat "$CACHE/java.stamp" 2>/dev/null)" != "$java_hash" ]; then
  if [ -f "$CACHE/flagd-client-$java_hash.jar" ]; then
    mkdir -p "$JAVA_DIR/target"
    cp "$CACHE/flagd-client-$java_hash.jar" "$JAR"
  else
    echo "ensure-flagd-clients: mvn package in $JAVA_DIR (the first run downloads the dependencies)"
    (cd "$JAVA_DIR" && mvn -q -B -Dstyle.color=never package) || { echo "ensure-flagd-clients: mvn package failed in $JAVA_DIR" >&2; exit 1; }
    rm -f "$CACHE"/flagd-client-*.jar
    cp "$JAR" "$CACHE/flagd-client-$java_hash.jar"
  fi
  echo "$java_hash" > "$CACHE/java.stamp"
fi
