#!/usr/bin/env bash
# The local Debian base image the project's container images start FROM, made with
# debootstrap from the Debian mirror this machine's own apt sources name: no registry, and no
# package host written into the repository. Does nothing when the image exists.
#   bash scripts/debian-base.sh            # builds localhost/debian-base:bookworm
#   bash scripts/debian-base.sh --mirror   # prints the mirror it would use
set -euo pipefail
SUITE=bookworm
BASE=localhost/debian-base:$SUITE
PODMAN=(podman --runtime runc)
APT_ETC=${APT_ETC:-/etc/apt}  # another folder only for the tests

# The first archive URI for $SUITE in the one-line (sources.list) or deb822 (*.sources) files.
apt_mirror() {
  local files=()
  for f in "$APT_ETC"/sources.list "$APT_ETC"/sources.list.d/*.list "$APT_ETC"/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  ((${#files[@]})) || return 1
  awk -v suite="$SUITE" '
    function stanza_end() {
      if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uris != "") {
        split(uris, u, " "); print u[1]; found = 1; exit
      }
      types = ""; suites = ""; uris = ""
    }
    FNR == 1 { if (deb822) stanza_end(); deb822 = (FILENAME ~ /\.sources$/) }
    deb822 && /^[ \t]*$/ { stanza_end(); next }
    deb822 && /^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
    deb822 && /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
    deb822 && /^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
    !deb822 && $1 == "deb" {
      i = 2
      if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i + 1) == suite) { print $i; found = 1; exit }
    }
    END { if (!found && deb822) stanza_end() }
  ' "${files[@]}" | head -n 1
}

mirror=$(apt_mirror || true)
if [ -z "$mirror" ]; then
  echo "debian-base: no '$SUITE' archive in $APT_ETC/sources.list or $APT_ETC/sources.list.d/" >&2
  exit 1
fi
if [ "${1:-}" = "--mirror" ]; then
  echo "$mirror"
  exit 0
fi
if "${PODMAN[@]}" image exists "$BASE"; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "debian-base: debootstrap $SUITE from $mirror (about a minute)"
debootstrap --variant=minbase "$SUITE" "$work/rootfs" "$mirror" >/dev/null
tar -C "$work/rootfs" -c . | "${PODMAN[@]}" import - "$BASE" >/dev/null
echo "debian-base: $BASE made"
