#!/bin/sh
# Installs the Debian packages shmkv needs that are missing, as root;
# otherwise prints the exact apt-get line and fails.  Package lists are
# updated only when something has to be installed.
set -eu

want="$*"
missing=""
for pkg in $want; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $pkg"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "shmkv needs these Debian packages:$missing" >&2
	echo "install them as root with: apt-get install -y$missing" >&2
	exit 1
fi
echo "installing:$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
