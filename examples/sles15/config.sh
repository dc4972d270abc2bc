#!/bin/sh
# Runs inside the image root (chroot) after the packages are installed.
set -e
echo "configured by config.sh for $kiwi_iname $kiwi_iversion" > /etc/ims-configured
mkdir -p /var/lib/ims-example
date -u +%Y > /var/lib/ims-example/built-year
