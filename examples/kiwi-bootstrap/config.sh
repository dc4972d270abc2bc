#!/bin/sh
# Runs inside the image root (chroot) after the packages are installed, with kiwi-ng or a native builder.
set -e
echo "configured by config.sh for $kiwi_iname $kiwi_iversion" > /etc/ims-configured
