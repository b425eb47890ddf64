#!/usr/bin/env bash
# Build the lookerops.cluster Looker stand-in (a test double, not Looker) for one release string.
#
#   tests/standin/build.sh VERSION OUTDIR [--startup-seconds N] [--migration-seconds N] [--fail-migration] [--profile suite|realistic]
#
# Writes OUTDIR/looker.jar (core: Main-Class, Class-Path: looker-dependencies.jar) and
# OUTDIR/looker-dependencies.jar (the MariaDB JDBC driver from Debian's libmariadb-java, SnakeYAML
# from libyaml-snake-java and the stand-in's shared classes), laid out like Looker's two jars. Both
# carry a build id; looker.jar refuses to start with a dependencies jar of another build.
#
# Timings baked into looker.jar (overridable at run time with -Dstandin.startup.seconds=N,
# -Dstandin.migration.seconds=N and -Dstandin.migration.fail=true):
#   --profile suite (default)   start-up 5 s, schema migration 8 s: not instant, like Looker
#   --profile realistic         start-up 60 s, schema migration 120 s (Looker: minutes, up to an hour)
#   --startup-seconds N, --migration-seconds N override the profile's value; --fail-migration makes
#   this release's schema migration fail.
#
# Needs a JDK (javac, jar; classes target Java 11). Output is reproducible (fixed entry order and
# timestamps); compiled classes and built jars are cached in $STANDIN_CACHE_DIR
# (default /var/tmp/lookerops-standin-cache), keyed by the sources, version and options.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC="$HERE/src"
MARIADB_JAR="${STANDIN_MARIADB_JAR:-/usr/share/java/mariadb-java-client.jar}"
SNAKEYAML_JAR="${STANDIN_SNAKEYAML_JAR:-/usr/share/java/snakeyaml.jar}"
CACHE="${STANDIN_CACHE_DIR:-/var/tmp/lookerops-standin-cache}"
JAR_DATE="2020-01-01T00:00:00Z"

die() { printf 'build.sh: ERROR: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '4p' "$0" | sed 's/^# *//' >&2; exit 2; }

[ $# -ge 2 ] || usage
VERSION=$1
OUTDIR=$2
shift 2
PROFILE=suite
STARTUP_SECONDS=
MIGRATION_SECONDS=
FAIL_MIGRATION=false
while [ $# -gt 0 ]; do
  case "$1" in
    --startup-seconds) [ $# -ge 2 ] || usage; STARTUP_SECONDS=$2; shift 2 ;;
    --startup-seconds=*) STARTUP_SECONDS=${1#*=}; shift ;;
    --migration-seconds) [ $# -ge 2 ] || usage; MIGRATION_SECONDS=$2; shift 2 ;;
    --migration-seconds=*) MIGRATION_SECONDS=${1#*=}; shift ;;
    --profile) [ $# -ge 2 ] || usage; PROFILE=$2; shift 2 ;;
    --profile=*) PROFILE=${1#*=}; shift ;;
    --fail-migration) FAIL_MIGRATION=true; shift ;;
    *) die "unknown option '$1'" ;;
  esac
done
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "VERSION must look like 25.6.12, got '$VERSION'"
case "$PROFILE" in
  suite) : "${STARTUP_SECONDS:=5}" "${MIGRATION_SECONDS:=8}" ;;
  realistic) : "${STARTUP_SECONDS:=60}" "${MIGRATION_SECONDS:=120}" ;;
  *) die "--profile must be 'suite' or 'realistic', got '$PROFILE'" ;;
esac
[[ "$STARTUP_SECONDS" =~ ^[0-9]+$ ]] || die "--startup-seconds must be a whole number, got '$STARTUP_SECONDS'"
[[ "$MIGRATION_SECONDS" =~ ^[0-9]+$ ]] || die "--migration-seconds must be a whole number, got '$MIGRATION_SECONDS'"

if ! command -v javac >/dev/null || ! command -v jar >/dev/null; then
  [ "$(id -u)" -eq 0 ] || die "a JDK is needed (javac and jar): apt-get install openjdk-17-jdk-headless (as root)"
  echo "build.sh: installing openjdk-17-jdk-headless (javac and jar)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless >/dev/null; } \
    || die "could not install openjdk-17-jdk-headless"
fi

# The jars bundled into looker-dependencies.jar, from Debian packages (installed as root when missing).
JARS=("$MARIADB_JAR" "$SNAKEYAML_JAR")
JAR_PACKAGES=(libmariadb-java libyaml-snake-java)
missing=()
for i in "${!JARS[@]}"; do
  [ -r "${JARS[$i]}" ] || missing+=("${JAR_PACKAGES[$i]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]} (jars under /usr/share/java): install them (as root)"
  echo "build.sh: installing ${missing[*]} (jars bundled into looker-dependencies.jar)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }
  for jar in "${JARS[@]}"; do
    [ -r "$jar" ] || die "${missing[*]} installed but $jar is still missing"
  done
fi

mkdir -p "$CACHE"
SRC_HASH=$( (cd "$SRC" && find . -name '*.java' -type f | LC_ALL=C sort | xargs sha256sum; sha256sum "${JARS[@]}" | cut -d' ' -f1) \
  | sha256sum | cut -c1-16)
BUILD_ID=$(printf '%s:%s' "$VERSION" "$SRC_HASH" | sha256sum | cut -c1-16)

# 1. Compile once per source tree.
CLASSES="$CACHE/classes-$SRC_HASH"
if [ ! -d "$CLASSES" ]; then
  tmp=$(mktemp -d "$CACHE/tmp.classes.XXXXXX")
  if ! (cd "$SRC" && find . -name '*.java' -type f | LC_ALL=C sort \
      | xargs javac --release 11 -encoding UTF-8 -Xlint:-options -cp "$SNAKEYAML_JAR" -d "$tmp" >"$tmp.log" 2>&1); then
    cat "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    die "javac failed"
  fi
  rm -f "$tmp.log"
  mv -T "$tmp" "$CLASSES" 2>/dev/null || rm -rf "$tmp"   # a parallel build may have won the race
fi

# 2. Pack both jars once per version and options.
KEY="$VERSION-$SRC_HASH-s$STARTUP_SECONDS-m$MIGRATION_SECONDS-$FAIL_MIGRATION"
BUILT="$CACHE/jars-$KEY"
complete() { [ -f "$BUILT/looker.jar" ] && [ -f "$BUILT/looker-dependencies.jar" ]; }
if [ -d "$BUILT" ] && ! complete; then rm -rf "$BUILT"; fi   # only by hand: builds are moved in whole
if ! complete; then
  work=$(mktemp -d "$CACHE/tmp.jars.XXXXXX")
  mkdir -p "$work/core/standin" "$work/deps/standin" "$work/out"
  # Core: the stand-in's node classes and the release it was built as.
  (cd "$CLASSES" && find standin -maxdepth 1 -name '*.class' -exec cp --parents {} "$work/core/" \;)
  printf 'version=%s\nbuild_id=%s\nstartup_seconds=%s\nmigration_seconds=%s\nmigration_fail=%s\n' \
    "$VERSION" "$BUILD_ID" "$STARTUP_SECONDS" "$MIGRATION_SECONDS" "$FAIL_MIGRATION" >"$work/core/standin/release.properties"
  printf 'Manifest-Version: 1.0\nMain-Class: standin.Main\nClass-Path: looker-dependencies.jar\nImplementation-Title: %s\nImplementation-Version: %s\n' \
    "lookerops.cluster Looker stand-in (not Looker)" "$VERSION" >"$work/core.mf"
  # Dependencies: the JDBC driver and SnakeYAML (without their manifests) and the shared classes.
  for dep in "${JARS[@]}"; do
    (cd "$work/deps" && jar --extract --file "$dep" && rm -rf META-INF/MANIFEST.MF META-INF/maven)
  done
  (cd "$CLASSES" && cp --parents standin/shared/*.class "$work/deps/")
  printf 'version=%s\nbuild_id=%s\n' "$VERSION" "$BUILD_ID" >"$work/deps/standin/dependencies.properties"
  printf 'Manifest-Version: 1.0\nImplementation-Title: %s\nImplementation-Version: %s\n' \
    "lookerops.cluster Looker stand-in dependencies (not Looker)" "$VERSION" >"$work/deps.mf"
  for part in core deps; do
    name=looker.jar
    [ "$part" = deps ] && name=looker-dependencies.jar
    (cd "$work/$part" && find . -type f | sed 's|^\./||' | LC_ALL=C sort >"$work/$part.list" \
      && xargs -a "$work/$part.list" -d '\n' jar --create --file "$work/out/$name" --manifest "$work/$part.mf" --date="$JAR_DATE")
  done
  mkdir -p "$work/final"
  mv "$work/out/looker.jar" "$work/out/looker-dependencies.jar" "$work/final/"
  mv -T "$work/final" "$BUILT" 2>/dev/null || true   # a parallel build of the same key may have won: same bytes
  rm -rf "$work"
fi

mkdir -p "$OUTDIR"
for name in looker.jar looker-dependencies.jar; do
  cp "$BUILT/$name" "$OUTDIR/.$name.$$"
  mv -f "$OUTDIR/.$name.$$" "$OUTDIR/$name"
done
echo "build.sh: Looker stand-in $VERSION (build $BUILD_ID, start-up ${STARTUP_SECONDS}s, migration ${MIGRATION_SECONDS}s$([ "$FAIL_MIGRATION" = true ] && echo ', failing')) in $OUTDIR"
