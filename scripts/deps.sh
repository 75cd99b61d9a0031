#!/usr/bin/env bash
# Installs what gitmon's tests need, or says exactly what is missing.
# The end-to-end tests run real Git servers (git http-backend, git daemon)
# and sshd on loopback; the signature tests sign commits with ssh-keygen and
# gpg keys.
set -euo pipefail

missing=()
need() { # need COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || missing+=("$2:$1")
}
need git git
need /usr/lib/git-core/git-http-backend git
need /usr/lib/git-core/git-daemon git
need /usr/sbin/sshd openssh-server
need ssh-keygen openssh-client
need gpg gpg
need gpg-agent gpg-agent

[ ${#missing[@]} -eq 0 ] && exit 0

pkgs=$(printf '%s\n' "${missing[@]}" | cut -d: -f1 | sort -u | tr '\n' ' ')
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "deps: installing $pkgs" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
  exit 0
fi
echo "deps: the tests need these, and this user cannot install them:" >&2
for m in "${missing[@]}"; do echo "  ${m#*:} (Debian package ${m%%:*})" >&2; done
echo "install them with: sudo apt-get install -y $pkgs" >&2
exit 1
