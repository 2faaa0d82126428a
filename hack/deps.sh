#!/usr/bin/env bash
# Installs (as root on Debian/Ubuntu) or names (otherwise) the host packages kwc needs:
# the container engine, mmdebstrap for the offline Debian base, busybox-static for the
# fixtures' base, dpkg-deb for package checks and QEMU for probe calibration. kind's
# nodes bring their own containerd, runc and CNI plugins (kwc's node image).
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have dockerd || need+=(docker.io)
have mmdebstrap || need+=(mmdebstrap)
have dpkg-deb || need+=(dpkg)
have qemu-system-x86_64 || need+=(qemu-system-x86)
have keyctl || need+=(keyutils)
have cpio || need+=(cpio)
have chromium || need+=(chromium)
have losetup || need+=(mount)
[ -x /bin/busybox ] && ! file -L /bin/busybox 2>/dev/null | grep -q dynamically || need+=(busybox-static)
if [ -x /bin/busybox ] && ldd /bin/busybox >/dev/null 2>&1; then need+=(busybox-static); fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! have apt-get; then
  echo "kwc: missing host packages: ${need[*]}" >&2
  echo "  fix: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "kwc: installing ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${need[@]}" >/dev/null
