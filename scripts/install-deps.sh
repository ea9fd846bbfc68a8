#!/bin/sh
# Installs the Debian packages shmkv needs that are missing, as root;
# otherwise prints the exact apt-get line and fails.  Package lists are
# fetched only when there are none yet, or when an install fails on stale
# ones.
#
# Some test and benchmark tools are servers that Debian starts at install
# time (memcached on 127.0.0.1:11211, shmkv's own default port; nutcracker;
# redis-server).  Installing them must not leave a service running or
# enabled on this machine, so the install runs with a policy-rc.d that
# forbids starting services (Debian's maintainer scripts honour it), and
# the services of packages installed now are disabled afterwards.  A
# policy-rc.d that is already in place is the machine's own: it is left
# as it is, and the services are stopped after the install instead.
set -eu

SERVICES="memcached nutcracker redis-server"
POLICY=/usr/sbin/policy-rc.d

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

our_policy=""
if [ ! -e "$POLICY" ]; then
	# 101: "action forbidden by policy", see invoke-rc.d(8).
	printf '#!/bin/sh\n# shmkv install-deps.sh: no service starts during the install\nexit 101\n' >"$POLICY"
	chmod 755 "$POLICY"
	our_policy=yes
	trap 'rm -f "$POLICY"' EXIT INT TERM
fi

install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
}

# A fresh machine has no package lists: fetch them before the first
# install, and otherwise only when an install fails on stale ones.
echo "installing:$missing"
if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
	apt-get update -qq
	install
elif ! install; then
	apt-get update -qq
	install
fi

# Leave none of the servers installed just now enabled, nor running.
for svc in $SERVICES; do
	case " $missing " in *" $svc "*) ;; *) continue ;; esac
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable "$svc.service" >/dev/null 2>&1 || true
		if [ -d /run/systemd/system ]; then
			systemctl stop "$svc.service" >/dev/null 2>&1 || true
		fi
	fi
	if [ -x "/etc/init.d/$svc" ]; then
		update-rc.d "$svc" disable >/dev/null 2>&1 || true
		[ -n "$our_policy" ] || invoke-rc.d --force "$svc" stop >/dev/null 2>&1 || true
	fi
	echo "installed $svc without leaving its service enabled or running"
done
