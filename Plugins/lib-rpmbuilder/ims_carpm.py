"""ims_carpm - builds a site CA certificate as an RPM (like HPE Cray IMS's cray_ca_cert RPM).

IMS builds its CA RPM and hands it to ``kiwi-ng --add-bootstrap-package`` so that the image trusts
the site CA from the first package on. This module does the same for any recipe: the RPM installs
the PEM as a vendor trust anchor and rebuilds the trust store in %post/%postun when the tool exists:

  SUSE layout: /usr/share/pki/trust/anchors/<anchor>.pem,        update-ca-certificates
  RHEL layout: /usr/share/pki/ca-trust-source/anchors/<anchor>.pem, update-ca-trust extract

The scriptlets are Lua (``%post -p <lua>``), so the RPM needs no shell in the image: installed as
the very first bootstrap package it just drops the anchor, and the trust-store package installed
later picks it up in its own scriptlet.

Used by Plugins/inject-ca (phase ca-rpm) and Plugins/inject-ca/bin/make-ca-rpm.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from typing import List, Optional, Sequence

from ims_rootfs import pem_certificates

LAYOUT_ANCHORS = {"suse": "/usr/share/pki/trust/anchors", "rhel": "/usr/share/pki/ca-trust-source/anchors"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_VERSION = re.compile(r"^[A-Za-z0-9._+~^]+$")

_LUA = """
local tools = { {"/usr/sbin/update-ca-certificates"}, {"/usr/bin/update-ca-trust", "extract"} }
for _, argv in ipairs(tools) do
  if posix.access(argv[1], "x") then
    if rpm.execute then
      rpm.execute(table.unpack(argv))
    else
      local pid = posix.fork()
      if pid == 0 then
        posix.exec(table.unpack(argv))
      elseif pid > 0 then
        posix.wait(pid)
      end
    end
  end
end
"""


class CaRpmError(Exception):
    pass


def _spec(name: str, version: str, release: str, anchor: str, layouts: Sequence[str]) -> str:
    install = []
    files = []
    for layout in layouts:
        directory = LAYOUT_ANCHORS[layout]
        install.append(f"mkdir -p %{{buildroot}}{directory}")
        install.append(f"install -m 0644 %{{ca_file}} %{{buildroot}}{directory}/{anchor}.pem")
        files.append(f"{directory}/{anchor}.pem")
    where = ", ".join(f"{d}/{anchor}.pem" for d in (LAYOUT_ANCHORS[l] for l in layouts))
    # The Lua body is used as is; rpm does not expand macros in it beyond %%.
    lua = _LUA.strip().replace("%", "%%")
    return f"""Name:           {name}
Version:        {version}
Release:        {release}
Summary:        Site CA certificate as a system trust anchor
License:        SUSE-Public-Domain
BuildArch:      noarch
AutoReqProv:    no

%description
The site's CA certificate, installed as a trust anchor ({where}).
Its install and erase scriptlets rebuild the trust store with update-ca-certificates or
update-ca-trust when the image has them. Built by ims (inject-ca, make-ca-rpm).

%prep
%build

%install
{chr(10).join(install)}

%post -p <lua>
{lua}

%postun -p <lua>
{lua}

%files
{chr(10).join(files)}
"""


def build_ca_rpm(ca_file: str, out_dir: str, *, name: str = "ims-site-ca", version: str = "1.0",
                 release: str = "1", layouts: Sequence[str] = ("suse", "rhel"), anchor: Optional[str] = None,
                 workdir: Optional[str] = None) -> str:
    """Builds ``<name>-<version>-<release>.noarch.rpm`` into ``out_dir``; returns its path."""
    if not _NAME.match(name):
        raise CaRpmError(f"package name {name!r} is not valid")
    if not _VERSION.match(version) or not _VERSION.match(release):
        raise CaRpmError(f"version {version!r} / release {release!r} is not valid")
    anchor = anchor or name
    if not _NAME.match(anchor):
        raise CaRpmError(f"anchor name {anchor!r} is not valid")
    layouts = list(dict.fromkeys(layouts))
    if not layouts or any(layout not in LAYOUT_ANCHORS for layout in layouts):
        raise CaRpmError(f"layouts must be suse and/or rhel, not {layouts}")
    with open(ca_file, "rb") as f:
        certs = pem_certificates(f.read())
    if not certs:
        raise CaRpmError(f"{ca_file} holds no PEM certificate")
    if shutil.which("rpmbuild") is None:
        raise CaRpmError("rpmbuild not found (apt-get install rpm)")
    os.makedirs(out_dir, exist_ok=True)
    top = tempfile.mkdtemp(prefix="ims-ca-rpm-", dir=workdir)
    try:
        home = os.path.join(top, "home")
        os.makedirs(home)
        pem = os.path.join(top, "ca.pem")
        with open(pem, "wb") as f:
            f.write(b"\n".join(certs) + b"\n")
        spec = os.path.join(top, f"{name}.spec")
        with open(spec, "w", encoding="utf-8") as f:
            f.write(_spec(name, version, release, anchor, layouts))
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": home,
               "LANG": "C.UTF-8", "TMPDIR": top}
        if "SOURCE_DATE_EPOCH" in os.environ:
            env["SOURCE_DATE_EPOCH"] = os.environ["SOURCE_DATE_EPOCH"]
        reproducible = []
        if "SOURCE_DATE_EPOCH" in os.environ:  # the same CA gives the same package (build time, file times)
            reproducible = ["--define", "use_source_date_epoch_as_buildtime 1",
                            "--define", "clamp_mtime_to_source_date_epoch 1"]
        result = subprocess.run(
            ["rpmbuild", "-bb", "--nodeps", "--quiet", "--target", "noarch",
             "--define", f"_topdir {top}/rpmbuild", "--define", f"ca_file {pem}",
             "--define", "_binary_payload w9.gzdio", "--define", "_buildhost ims", *reproducible, spec],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise CaRpmError(f"rpmbuild failed: {(result.stderr or result.stdout).strip()[-2000:]}")
        built: List[str] = []
        for directory, _dirs, files in os.walk(os.path.join(top, "rpmbuild", "RPMS")):
            built += [os.path.join(directory, f) for f in files if f.endswith(".rpm")]
        if len(built) != 1:
            raise CaRpmError(f"rpmbuild produced {len(built)} packages")
        target = os.path.join(out_dir, os.path.basename(built[0]))
        shutil.move(built[0], target)
        return target
    finally:
        shutil.rmtree(top, ignore_errors=True)
