"""ims_rpmbuilder - the build-root engine shared by builder-zypper and builder-dnf.

The engine has already parsed the KIWI description and resolved it for the job's profile and
architecture; it passes the result as ``inputs.description`` (a ``description.json`` file, see
docs/builders.md for the contract). A builder then builds the root FROM THE HOST SIDE with the
host's package manager (``zypper --root`` / ``dnf --installroot``), like ``kiwi-ng system prepare``
does for bootstrap packages, but for every package section, so no package manager is needed inside
the image:

  repositories   private package-manager configuration (nothing from the host's own), signing keys
                 imported into the image's rpmdb, TLS trust for the site CA, each repository
                 refreshed on its own so that failures name it
  bootstrap      bootstrap packages, collections, archives and <file>s
  post_bootstrap.sh  run in a chroot when present (kiwi: at the end of the bootstrap)
  image          image packages, collections, archives and <file>s
  trust          the site CA in the image's trust store (it was seeded before the first package)
  overlay        the description's root/ overlay tree (modes and symlinks preserved)
  users          groups, users (/etc/passwd, /etc/group, /etc/shadow edited directly), timezone,
                 locale and keytable
  repos-in-image imageinclude/imageonly repositories written into the image (the image's view)
  config.sh      run in a chroot when present, with /.profile (the kiwi_* variables) and /.kconfig (kiwi's
                 function library, ims_kconfig.sh) in the root; a command the image lacks is a warning
                 naming the script, line and command (a failure with config strict_scripts)
  uninstall      "uninstall" packages removed with the package manager (with dependents)
  delete         "delete" packages removed with rpm -e --nodeps --noscripts
  images.sh      run in a chroot when present
  rpmdb          rpmdb --rebuilddb with the image's own rpm when it has one
  package-list   packages.json from the image's rpmdb, each package with the alias of the repository it was
                 installed from when zypper's history or dnf's history database says so

The rpm database is written to /usr/lib/sysimage/rpm (a private HOME with .rpmmacros, and
``--dbpath`` for direct rpm calls): Debian's rpm would otherwise use ~/.rpmdb.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import tarfile
import time
import urllib.parse
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ims_plugin import Context, PluginError
from ims_rootfs import (TRUST_LAYOUTS, ImageRpm, RootSession, ToolResult, ToolRunner, atomic_write, chroot_env,
                        find_in_root, is_inside, makedirs_in_root, pem_certificates, real_rpm_in_root, remove_tree,
                        resolve_in_root, shell_in_root, system_ca_bundle)

RPMDB = "/usr/lib/sysimage/rpm"
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SITE_CA_NAME = "ims-site-ca.pem"
PACKAGE_QUERY = "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n"
KNOWN_CONFIG = {"distro_family", "package_manager", "arch", "profile", "profiles", "repositories", "ca_bundle",
                "signing_keys", "releasever"}
STANDARD_SECTIONS = ("bootstrap", "image", "delete", "uninstall")
_ALIAS_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]*$")
_NAME_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\$?$")


def fail(code: str, category: str, message: str, details: Any = None, **kw: Any) -> PluginError:
    return PluginError(f"build-root.{code}", category, message, details, **kw)


# ============================================================================================
# The description contract


class Repo:
    """One repository of the description (or of config.repositories)."""

    def __init__(self, index: int, raw: Dict[str, Any], recipe: str, origin: str) -> None:
        pointer = f"/repositories/{index}"
        self.pointer = pointer
        self.origin = origin
        alias = raw.get("alias") or raw.get("name") or f"repo{index + 1}"
        if not isinstance(alias, str) or not _ALIAS_OK.match(alias):
            raise fail("invalid_description", "user",
                       f"repository alias {alias!r} is not usable (letters, digits and _.:+- only)",
                       path=pointer + "/alias")
        self.alias = alias
        source = raw.get("source") if origin == "description" else raw.get("url")
        if source is None:
            source = raw.get("url") or raw.get("source")
        if not isinstance(source, str) or not source.strip():
            raise fail("invalid_description", "user", f"repository '{alias}' has no source URL",
                       path=pointer + "/source")
        self.source = source.strip()
        self.url = self._translate(self.source, recipe)
        rtype = raw.get("type") or "rpm-md"
        if rtype not in ("rpm-md", "rpm-dir", "yast2"):
            raise fail("unsupported_repository", "user",
                       f"repository '{alias}' has type '{rtype}'; the rpm builders support rpm-md (and rpm-dir, "
                       "yast2 with zypper)", {"alias": alias, "type": rtype}, path=pointer + "/type")
        self.type = rtype
        priority = raw.get("priority")
        if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)):
            raise fail("invalid_description", "user", f"repository '{alias}': priority must be an integer",
                       path=pointer + "/priority")
        self.priority: Optional[int] = priority
        self.imageinclude = bool(raw.get("imageinclude"))
        self.imageonly = bool(raw.get("imageonly"))
        self.repo_gpgcheck = _opt_bool(raw.get("repository_gpgcheck"))
        self.pkg_gpgcheck = _opt_bool(raw.get("package_gpgcheck"))
        self.username = raw.get("username") if isinstance(raw.get("username"), str) else None
        self.password = raw.get("password") if isinstance(raw.get("password"), str) else None
        self.components = raw.get("components")

    def _translate(self, source: str, recipe: str) -> str:
        scheme = source.split("://", 1)[0].lower() if "://" in source else ""
        if scheme in ("http", "https", "ftp"):
            return source
        if scheme in ("file", "dir"):
            path = urllib.parse.unquote(source.split("://", 1)[1])
            if not path.startswith("/"):
                raise fail("unsupported_repository", "user",
                           f"repository '{self.alias}': {source} is not an absolute local path",
                           path=self.pointer + "/source")
            return "file://" + path
        if scheme == "this":
            rel = source.split("://", 1)[1].lstrip("/")
            path = os.path.normpath(os.path.join(recipe, rel))
            if not is_inside(recipe, path):
                raise fail("unsupported_repository", "user",
                           f"repository '{self.alias}': {source} leaves the recipe directory",
                           path=self.pointer + "/source")
            return "file://" + path
        raise fail("unsupported_repository", "user",
                   f"repository '{self.alias}': source {source} is not supported by the rpm builders "
                   "(use http://, https://, ftp://, file://, dir:// or this://)",
                   {"alias": self.alias, "source": source}, path=self.pointer + "/source")

    @property
    def display_url(self) -> str:
        return self.source

    @property
    def is_remote(self) -> bool:
        return self.url.split("://", 1)[0] in ("http", "https", "ftp")


def _opt_bool(value: Any) -> Optional[bool]:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _str_list(value: Any, pointer: str) -> List[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise fail("invalid_description", "user", f"{pointer} must be a list of non-empty strings", path=pointer)
    return [v.strip() for v in value]


class Description:
    """The resolved description (description.json); missing keys are empty."""

    def __init__(self, data: Dict[str, Any], recipe: str) -> None:
        if not isinstance(data, dict):
            raise fail("invalid_description", "user", "description.json must be a JSON object")
        self.raw = data
        self.name = data.get("name") if isinstance(data.get("name"), str) else "image"
        self.version = data.get("version") if isinstance(data.get("version"), str) else "1.0.0"
        self.schema_version = data.get("schema_version")
        self.package_manager = data.get("package_manager")
        self.distro_family = data.get("distro_family")
        self.arch = data.get("arch")
        self.profiles = _str_list(data.get("profiles"), "/profiles")
        prefs = data.get("preferences") if isinstance(data.get("preferences"), dict) else {}
        self.preferences = prefs
        self.locale = prefs.get("locale") if isinstance(prefs.get("locale"), str) else None
        self.keytable = prefs.get("keytable") if isinstance(prefs.get("keytable"), str) else None
        self.timezone = prefs.get("timezone") if isinstance(prefs.get("timezone"), str) else None
        self.rpm_check_signatures = bool(prefs.get("rpm_check_signatures"))
        self.rpm_excludedocs = bool(prefs.get("rpm_excludedocs"))
        self.release_version = prefs.get("release_version") if isinstance(prefs.get("release_version"), str) else None
        types = [t for t in (prefs.get("types") if isinstance(prefs.get("types"), list) else [])
                 if isinstance(t, dict) and isinstance(t.get("image"), str)]
        primary = [t for t in types if str((t.get("attributes") or {}).get("primary", "")).lower() == "true"]
        self.image_type = (primary or types or [{}])[0].get("image")
        repos = data.get("repositories") if data.get("repositories") is not None else []
        if not isinstance(repos, list):
            raise fail("invalid_description", "user", "/repositories must be a list", path="/repositories")
        self.repositories = [Repo(i, r if isinstance(r, dict) else {}, recipe, "description") for i, r in enumerate(repos)]
        # Sections are keyed by kiwi's <packages type=…>: bootstrap, image, delete, uninstall, and image
        # types (oem, iso, tbz, …). The section of the image type being built (the primary one, else
        # the first) is installed with the image packages; other types' sections are not.
        packages = data.get("packages") if isinstance(data.get("packages"), dict) else {}
        self.packages = {k: _str_list(packages.get(k), f"/packages/{k}") for k in STANDARD_SECTIONS}
        collections = data.get("collections") if isinstance(data.get("collections"), dict) else {}
        self.collections = {k: _str_list(collections.get(k), f"/collections/{k}") for k in ("bootstrap", "image")}
        self.type_sections_used: List[str] = []
        self.type_sections_ignored: List[str] = []
        for key in sorted(set(packages) | set(collections)):
            if key in STANDARD_SECTIONS:
                continue
            if key == self.image_type:
                for name in _str_list(packages.get(key), f"/packages/{key}"):
                    if name not in self.packages["image"]:
                        self.packages["image"].append(name)
                for name in _str_list(collections.get(key), f"/collections/{key}"):
                    if name not in self.collections["image"]:
                        self.collections["image"].append(name)
                self.type_sections_used.append(key)
            else:
                self.type_sections_ignored.append(key)
        self.archives: List[Dict[str, str]] = []
        for i, archive in enumerate(data.get("archives") or []):
            if isinstance(archive, str):
                archive = {"name": archive}
            if not isinstance(archive, dict) or not isinstance(archive.get("name"), str):
                raise fail("invalid_description", "user", f"/archives/{i} needs a name", path=f"/archives/{i}")
            section = self._install_section(archive.get("section"), f"archive {archive['name']}")
            if section is None:
                continue
            target = archive.get("target_dir") or "/"
            if not isinstance(target, str) or ".." in target.split("/"):
                raise fail("invalid_description", "user", f"/archives/{i}: target_dir must be a path without '..'",
                           path=f"/archives/{i}/target_dir")
            self.archives.append({"name": archive["name"], "section": section, "target_dir": target,
                                  "pointer": f"/archives/{i}"})
        self.users: List[Dict[str, Any]] = []
        for i, user in enumerate(data.get("users") or []):
            if not isinstance(user, dict) or not isinstance(user.get("name"), str) or not _NAME_OK.match(user["name"]):
                raise fail("invalid_description", "user", f"/users/{i}: a user needs a valid name", path=f"/users/{i}/name")
            self.users.append(dict(user, pointer=f"/users/{i}"))
        self.signing_keys = _str_list(data.get("signing_keys"), "/signing_keys")
        self.files: List[Dict[str, Any]] = []
        for i, entry in enumerate(data.get("files") or []):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
                raise fail("invalid_description", "user", f"/files/{i} needs a name", path=f"/files/{i}")
            section = self._install_section(entry.get("section"), f"file {entry['name']}")
            if section is None:
                continue
            target = entry.get("target") or ("/" + entry["name"].lstrip("/"))
            if not isinstance(target, str) or ".." in target.split("/"):
                raise fail("invalid_description", "user", f"/files/{i}: target must be a path without '..'",
                           path=f"/files/{i}/target")
            self.files.append({"name": entry["name"], "section": section, "target": target,
                               "owner": entry.get("owner") if isinstance(entry.get("owner"), str) else None,
                               "permissions": entry.get("permissions") if isinstance(entry.get("permissions"), str) else None,
                               "pointer": f"/files/{i}"})
        profile = data.get("profile") if isinstance(data.get("profile"), dict) else {}
        self.profile = {k: v for k, v in profile.items() if isinstance(k, str) and isinstance(v, str)
                        and re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k)}
        self.post_bootstrap_sh = data.get("post_bootstrap_sh") if isinstance(data.get("post_bootstrap_sh"), str) else None
        self.config_sh = data.get("config_sh") if isinstance(data.get("config_sh"), str) else None
        self.images_sh = data.get("images_sh") if isinstance(data.get("images_sh"), str) else None
        self.overlay = data.get("overlay") if isinstance(data.get("overlay"), str) else None


    def _install_section(self, section: Any, what: str) -> Optional[str]:
        """Where an archive or <file> of package section ``section`` is installed: bootstrap or image; the section of
        the image type being built goes with the image; another type's section is skipped (recorded) -> None."""
        section = section or "image"
        if section in ("bootstrap", "image"):
            return section
        if section != self.image_type:
            self.type_sections_ignored.append(f"{what} ({section})")
            return None
        return "image"

# ============================================================================================
# Error classification


_TLS = re.compile(r"Curl error \(?60\)?|SSL certificate problem|server certificate verification failed|"
                  r"certificate verify failed|SSL peer certificate|unable to get local issuer certificate|"
                  r"self[- ]signed certificate", re.I)
_UNREACHABLE = re.compile(r"Curl error \(?(5|6|7|28|35|52|56)\)?|Couldn't connect|Could not resolve host|"
                          r"Connection refused|Connection failed|Failed to connect|Connection timed out|"
                          r"Operation timed out|Timeout was reached|Status code: 5\d\d|HTTP response code said error: 5|"
                          r"Empty reply from server|Network is unreachable|No route to host", re.I)
_SIGNATURE = re.compile(r"Signature verification failed|GPG signature verification error|Bad GPG signature|"
                        r"GPG check FAILED|NOKEY|is not signed|public key .* is not installed|"
                        r"You have enabled checking of packages via GPG keys|Signing data enabled, but no key|"
                        r"File '.*repomd\.xml' is signed with an unknown key|unknown key|"
                        r"signature could not be verified|Package header is not signed|BADSIG|"
                        r"doesn't match the one found|MISSING KEYS|failed to verify signature|"
                        r"GPG signature is not available|repomd\.xml\.asc|No signature found|"
                        r"Signature file .* not found", re.I)
_NOT_FOUND = re.compile(r"Status code: 404|not found on medium|Repository type can't be determined|"
                        r"Valid metadata not found|Cannot download repomd\.xml|HTTP response code said error: 404|"
                        r"Curl error \(?37\)?|Couldn't read a file|No such file or directory", re.I)


def selinux_policy(root: str) -> Optional[Dict[str, Any]]:
    """The image's SELinux policy from /etc/selinux/config: {"type", "mode", "file_contexts", "binary"} (paths
    inside the image, None when absent; the binary is the highest policy.N), or None without a config."""
    config = resolve_in_root(root, "/etc/selinux/config")
    if not os.path.isfile(config):
        return None
    values: Dict[str, str] = {}
    with open(config, encoding="utf-8", errors="replace") as f:
        for line in f:
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                values[key.strip()] = value.strip().strip('"')
    kind = values.get("SELINUXTYPE") or "targeted"
    mode = (values.get("SELINUX") or "enforcing").lower()
    if "/" in kind or kind in (".", ".."):
        raise fail("selinux_failed", "user", f"/etc/selinux/config: SELINUXTYPE={kind!r} is not a policy name")
    base = f"/etc/selinux/{kind}"
    contexts = f"{base}/contexts/files/file_contexts"
    binaries = []
    policy_dir = resolve_in_root(root, f"{base}/policy")
    if os.path.isdir(policy_dir):
        for name in os.listdir(policy_dir):
            number = name.partition("policy.")[2]
            if name.startswith("policy.") and number.isdigit():
                binaries.append((int(number), f"{base}/policy/{name}"))
    return {"type": kind, "mode": mode,
            "file_contexts": contexts if os.path.isfile(resolve_in_root(root, contexts)) else None,
            "binary": max(binaries)[1] if binaries else None}


def profile_text(variables: Dict[str, str]) -> str:
    """A /.profile: one NAME='value' line per variable, single quotes escaped for any POSIX shell."""
    return "".join(f"{k}='" + v.replace("'", "'\\''") + "'\n" for k, v in sorted(variables.items()))


#: "command not found" as bash ("S: line N: C: command not found"), busybox ash ("S: line N: C: not found")
#: and dash ("S: N: C: not found") print it.
_NOT_A_COMMAND = re.compile(r"^(?P<script>\S+?): (?:line )?(?P<line>\d+): (?P<command>[^\s:][^:]*): (?:command )?not found$")


def missing_commands(lines: Sequence[str], label: str) -> List[Dict[str, Any]]:
    """The commands a script called that the image does not have, in order, each once per line:
    [{"script": label, "line": N, "command": C}]. Only the script's own messages count (the shell names the
    script as /image/LABEL), not those of programs it runs."""
    found: List[Dict[str, Any]] = []
    for line in lines:
        match = _NOT_A_COMMAND.match(line.strip())
        if not match or os.path.basename(match.group("script")) != label:
            continue
        item = {"script": label, "line": int(match.group("line")), "command": match.group("command")}
        if item not in found:
            found.append(item)
    return found


def first_match(lines: Sequence[str], pattern: "re.Pattern[str]") -> Optional[str]:
    for line in lines:
        if pattern.search(line):
            return line.strip().lstrip("- ").strip()
    return None


def classify_repository_failure(repo: Repo, result: ToolResult, ca_configured: bool) -> PluginError:
    lines = result.lines
    details = {"alias": repo.alias, "url": repo.display_url, "exit_code": result.returncode,
               "output_tail": result.tail(15)}
    where = f"repository '{repo.alias}' ({repo.display_url})"
    line = first_match(lines, _SIGNATURE)
    if line:
        if re.search(r"GPG signature is not available|repomd\.xml\.asc|No signature found|Signature file .* not found",
                     line, re.I):
            line = "the repository metadata is not signed (no repodata/repomd.xml.asc) but signature checks are on"
        line = re.sub(r"^(Warning|Error): ", "", line)
        return fail("signature_invalid", "config",
                    f"signature verification failed for {where}: {line}", details,
                    hint="check the signing keys given for the repository (recipe <signing> keys or the "
                         "site's signing_keys) and that the repository is signed with one of them")
    line = first_match(lines, _TLS)
    if line:
        if ca_configured:
            message = (f"TLS certificate verification failed for {where}; the configured site CA does not "
                       f"verify the server's certificate ({line})")
        else:
            message = f"TLS certificate verification failed for {where}; is the site CA configured? ({line})"
        return fail("tls_untrusted", "environment", message, details,
                    hint="set the site CA bundle (build-root config ca_bundle) to the CA that signed the "
                         "repository server's certificate")
    line = first_match(lines, _UNREACHABLE)
    if line:
        return fail("repository_unreachable", "transient", f"{where} is unreachable: {line}", details,
                    retry_after_seconds=30)
    line = first_match(lines, _NOT_FOUND)
    if line:
        return fail("repository_invalid", "user",
                    f"{where} has no usable rpm-md metadata (repodata/repomd.xml): {line}", details,
                    hint="check the repository URL in the recipe")
    tail = "; ".join(result.tail(3)) or f"exit status {result.returncode}"
    return fail("repository_unreachable", "transient", f"{where} could not be loaded: {tail}", details,
                retry_after_seconds=30)


# ============================================================================================
# The builder


#: What zypper and dnf record about a build in the image: logs and transaction history with wall-clock times
#: and the build host's paths. Reproducible builds remove them.
ZYPPER_BUILD_RECORDS = ["/var/log/zypp/history"]
DNF_BUILD_RECORDS = ["/var/log/dnf.log", "/var/log/dnf.librepo.log", "/var/log/dnf.rpm.log", "/var/log/hawkey.log",
                     "/var/lib/dnf/history.sqlite", "/var/lib/dnf/history.sqlite-shm", "/var/lib/dnf/history.sqlite-wal"]


def remove_build_records(root: str, paths: List[str]) -> List[str]:
    """Removes the files (not directories) among ``paths`` inside ``root``; returns those removed. A path
    ending in ``*`` removes every file of its directory whose name starts with the rest."""
    removed = []
    for path in paths:
        if path.endswith("*"):
            directory, prefix = os.path.split(path[:-1])
            host_dir = resolve_in_root(root, directory)
            names = sorted(os.listdir(host_dir)) if os.path.isdir(host_dir) else []
            candidates = [os.path.join(directory, n) for n in names if n.startswith(prefix)]
        else:
            candidates = [path]
        for candidate in candidates:
            host = resolve_in_root(root, candidate, follow_last=False)
            if os.path.lexists(host) and not os.path.isdir(host):
                os.unlink(host)
                removed.append(candidate)
    return removed


def unique_matches(lines: List[str], *patterns: str) -> List[str]:
    """Group 1 of the first of ``patterns`` that matches each line, stripped, each value once, in order."""
    found: List[str] = []
    for line in lines:
        for pattern in patterns:
            m = re.search(pattern, line)
            if m:
                value = m.group(1).strip()
                if value not in found:
                    found.append(value)
                break
    return found


def normalize_autoinstalled(root: str) -> None:
    """Drops zypper's "# AutoInstalled generated <date>" line (the list itself is what zypper needs)."""
    path = resolve_in_root(root, "/var/lib/zypp/AutoInstalled", follow_last=False)
    if os.path.isfile(path) and not os.path.islink(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
        kept = [line for line in lines if not line.startswith("# AutoInstalled generated")]
        if kept != lines:
            with open(path, "w", encoding="utf-8") as f:
                f.writelines(kept)


# ============================================================================================
# Where the root's rpm database is, and which repository each package came from


#: Where an image keeps its rpm database, in the order it is looked for: where the builders write it (and where
#: newer SUSE and Fedora keep it), then the older place (RHEL up to 9, older SUSE), where a rebuild with the image's
#: own rpm may have moved it (stage_rpmdb). Symlinks between the two are resolved inside the root.
RPMDB_LOCATIONS = (RPMDB, "/var/lib/rpm")
#: The files of an rpm database, by backend: sqlite, ndb, Berkeley DB.
RPMDB_FILES = ("rpmdb.sqlite", "Packages.db", "Packages")


def find_rpmdb(root: str) -> Optional[Tuple[str, str]]:
    """(the database directory as the image sees it, its host path) of ``root``'s rpm database: the first of
    RPMDB_LOCATIONS that holds a database file; None when the root has none."""
    for path in RPMDB_LOCATIONS:
        host = resolve_in_root(root, path)
        if os.path.isdir(host) and any(os.path.isfile(os.path.join(host, name)) for name in RPMDB_FILES):
            return path, host
    return None


#: A package's identity for matching records of the package managers: (name, epoch or 0, version, release, arch).
Nevra = Tuple[str, int, str, str, str]


def _evr(edition: str) -> Optional[Tuple[int, str, str]]:
    """zypper's edition ``[epoch:]version-release`` as (epoch, version, release)."""
    epoch = 0
    if ":" in edition:
        head, edition = edition.split(":", 1)
        if not head.isdigit():
            return None
        epoch = int(head)
    if "-" not in edition:
        return None
    version, release = edition.rsplit("-", 1)
    return epoch, version, release


def zypper_install_sources(root: str) -> Dict[Nevra, str]:
    """The repository alias each package was installed from, from zypper's history in the root
    (``/var/log/zypp/history``: ``time|install|name|edition|arch|requested by|repository alias|checksum|``).
    The last install of a package wins; packages installed from files have an alias that is no repository's."""
    path = resolve_in_root(root, "/var/log/zypp/history")
    sources: Dict[Nevra, str] = {}
    if not os.path.isfile(path):
        return sources
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.rstrip("\n").split("|")
            if len(fields) < 7 or fields[1] != "install" or not fields[6]:
                continue
            evr = _evr(fields[3])
            if evr is not None:
                sources[(fields[2], evr[0], evr[1], evr[2], fields[4])] = fields[6]
    return sources


#: libdnf's transaction item actions that put a package into the root (install, downgrade, upgrade, reinstall),
#: and the state of a finished item.
_DNF_INSTALL_ACTIONS = (1, 2, 6, 9)
_DNF_DONE = 1


def dnf_install_sources(root: str, scratch: str) -> Dict[Nevra, str]:
    """The repository id each package was installed from, from dnf 4's history database in the root
    (``/var/lib/dnf/history.sqlite``), read from a copy in ``scratch`` so that the root's files stay as they are.
    The last finished install of a package wins."""
    sources: Dict[Nevra, str] = {}
    directory = resolve_in_root(root, "/var/lib/dnf")
    if not os.path.isfile(os.path.join(directory, "history.sqlite")):
        return sources
    copy = os.path.join(scratch, "dnf-history")
    os.makedirs(copy, exist_ok=True)
    for name in ("history.sqlite", "history.sqlite-wal", "history.sqlite-shm"):
        if os.path.isfile(os.path.join(directory, name)):
            shutil.copyfile(os.path.join(directory, name), os.path.join(copy, name))
    try:
        connection = sqlite3.connect(os.path.join(copy, "history.sqlite"))
        try:
            rows = connection.execute(
                "SELECT rpm.name, rpm.epoch, rpm.version, rpm.release, rpm.arch, repo.repoid "
                "FROM trans_item JOIN rpm ON rpm.item_id = trans_item.item_id "
                "JOIN repo ON repo.id = trans_item.repo_id "
                f"WHERE trans_item.action IN ({','.join(str(a) for a in _DNF_INSTALL_ACTIONS)}) "
                f"AND trans_item.state = {_DNF_DONE} ORDER BY trans_item.id").fetchall()
        finally:
            connection.close()
    except sqlite3.Error:
        return sources
    finally:
        remove_tree(copy)
    for name, epoch, version, release, arch, repoid in rows:
        if repoid:
            sources[(name, int(epoch or 0), version, release, arch)] = repoid
    return sources


class RootBuilder:
    """The tool-independent part of a build-root run; subclasses provide the package manager."""

    tool = "?"              # the package manager command
    source = "?"            # log source of its output
    family = "?"            # the distro family it is for (trust-store layout default)
    image_repo_dir = "/"    # where imageinclude repositories go in the image

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.runner = ToolRunner(ctx)
        self.stage_seconds: Dict[str, float] = {}
        self.metadata: Dict[str, Any] = {}
        self.warnings: List[str] = []
        self._image_rpm: Optional[ImageRpm] = None
        self.missing_commands: List[Dict[str, Any]] = []
        self.strict_scripts = False
        #: Package -> the alias of the repository it was installed from, as the package manager recorded it
        #: (read before a reproducible build removes those records).
        self.install_sources: Dict[Nevra, str] = {}

    # ---------------------------------------------------------------- logging helpers
    def log(self, level: str, msg: str, **fields: Any) -> None:
        self.runner.log(level, msg, **fields)

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)
        self.runner.log("warn", msg)

    # ---------------------------------------------------------------- request
    def load(self) -> None:
        ctx = self.ctx
        config = ctx.config
        for key in ("distro_family", "package_manager", "arch"):
            if config.get(key) is not None and (not isinstance(config.get(key), str) or not config.get(key)):
                raise fail("invalid_config", "config", f"config.{key} must be a non-empty string", path=f"/{key}")
        for key in sorted(set(config) - KNOWN_CONFIG):
            if not key.startswith("x-"):
                self.warn(f"config.{key} is not used by {self.tool} builder; ignored")
        recipe = ctx.input_path("recipe")
        if not recipe or not os.path.isdir(recipe):
            raise fail("missing_input", "config", "input 'recipe' (a directory) is required",
                       path="/inputs/recipe")
        self.recipe = os.path.realpath(recipe)
        description_path = ctx.input_path("description") or os.path.join(self.recipe, "description.json")
        if not os.path.isfile(description_path):
            raise fail("missing_input", "config",
                       "input 'description' (the resolved description.json) is required", path="/inputs/description")
        try:
            with open(description_path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            raise fail("invalid_description", "user", f"cannot read {description_path}: {exc}")
        self.desc = Description(data, self.recipe)
        # config decides; the description fills in what the engine left out.
        self.distro_family = config.get("distro_family") or self.desc.distro_family or self.family
        self.package_manager = config.get("package_manager") or self.desc.package_manager or self.tool
        self.arch = config.get("arch") or self.desc.arch
        if not isinstance(self.arch, str) or not self.arch:
            raise fail("invalid_config", "config", "config.arch is required", path="/arch")
        if self.desc.type_sections_used:
            self.log("info", f"installing the '{self.desc.image_type}' package section with the image packages")
        if self.desc.type_sections_ignored:
            self.log("info", f"not building image type(s) {', '.join(self.desc.type_sections_ignored)}: their "
                             "package sections are skipped")
        extra = config.get("repositories") or []
        if not isinstance(extra, list):
            raise fail("invalid_config", "config", "config.repositories must be a list", path="/repositories")
        repos = list(self.desc.repositories)
        for i, raw in enumerate(extra):
            if not isinstance(raw, dict):
                raise fail("invalid_config", "config", f"config.repositories[{i}] must be an object",
                           path=f"/repositories/{i}")
            repo = Repo(i, raw, self.recipe, "config")
            repo.pointer = f"/repositories/{i}"
            replaced = [r for r in repos if r.alias == repo.alias]
            if replaced:
                old = replaced[0]
                old.source, old.url = repo.source, repo.url
                if repo.priority is not None:
                    old.priority = repo.priority
                self.log("info", f"repository '{repo.alias}': URL overridden by the site configuration ({repo.source})")
            else:
                repos.append(repo)
        self.repos = repos
        self.build_repos = [r for r in repos if not r.imageonly]
        if not self.build_repos:
            raise fail("invalid_description", "user", "the description has no repositories to build from",
                       path="/repositories")
        self.releasever = config.get("releasever") or self.desc.release_version
        if self.releasever is not None and not isinstance(self.releasever, str):
            self.releasever = str(self.releasever)
        # Signing keys: the recipe's (file:// URIs or paths relative to the recipe) and the site's.
        self.keys: List[str] = []
        for i, key in enumerate(self.desc.signing_keys):
            self.keys.append(self._key_path(key, f"/signing_keys/{i}", "user"))
        site_keys = config.get("signing_keys") or []
        if not isinstance(site_keys, list):
            raise fail("invalid_config", "config", "config.signing_keys must be a list of paths", path="/signing_keys")
        for i, key in enumerate(site_keys):
            self.keys.append(self._key_path(key, f"/signing_keys/{i}", "config"))
        # The site CA.
        self.ca_bundle = config.get("ca_bundle") or None
        self.strict_scripts = config.get("strict_scripts") is True
        self.ca_certs: List[bytes] = []
        if self.ca_bundle is not None:
            if not isinstance(self.ca_bundle, str) or not os.path.isfile(self.ca_bundle):
                raise fail("invalid_config", "config", f"config.ca_bundle {self.ca_bundle!r} is not a readable file",
                           path="/ca_bundle")
            with open(self.ca_bundle, "rb") as f:
                self.ca_certs = pem_certificates(f.read())
            if not self.ca_certs:
                raise fail("invalid_config", "config", f"config.ca_bundle {self.ca_bundle} holds no PEM certificate",
                           path="/ca_bundle")
        ws = ctx.workspace
        self.out = ws["out"]
        self.state = ws["state"]
        self.tmp = os.path.join(ws["tmp"], "rpmbuilder")
        self.root = os.path.join(self.out, "rootfs")
        self.layout = TRUST_LAYOUTS.get(self.distro_family) or TRUST_LAYOUTS[self.family]

    def _key_path(self, key: Any, pointer: str, category: str) -> str:
        if not isinstance(key, str) or not key:
            raise fail("invalid_config" if category == "config" else "invalid_description", category,
                       f"{pointer} must be a path or file:// URI", path=pointer)
        path = key
        if key.startswith("file://"):
            path = urllib.parse.unquote(key[len("file://"):])
        elif "://" in key:
            raise fail("signing_key_missing", category,
                       f"signing key {key} is not a local file (only paths and file:// URIs are supported)",
                       path=pointer)
        if not path.startswith("/"):
            path = os.path.join(self.recipe, path)
        if not os.path.isfile(path):
            raise fail("signing_key_missing", category, f"signing key {key} does not exist", {"key": key},
                       path=pointer)
        return path

    # ---------------------------------------------------------------- environment
    def host_env(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        env = {"PATH": HOST_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC", "HOME": self.home,
               "TMPDIR": self.tmp}
        for key in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
                    "SOURCE_DATE_EPOCH"):
            if key in os.environ:
                env[key] = os.environ[key]
        if extra:
            env.update(extra)
        return env

    def rpm_argv(self, *args: str) -> List[str]:
        return ["rpm", "--root", self.root, "--dbpath", RPMDB, *args]

    def run_tool(self, argv: Sequence[str], source: Optional[str] = None, **kw: Any) -> ToolResult:
        return self.runner.run(argv, source=source or self.source, env=kw.pop("env", None) or self.tool_env(),
                               cwd=self.tmp, **kw)

    def tool_env(self) -> Dict[str, str]:
        return self.host_env()

    # ---------------------------------------------------------------- hooks for subclasses
    def prepare_tool(self) -> None:
        raise NotImplementedError

    def write_build_repo(self, repo: Repo, gpg: Tuple[bool, bool]) -> None:
        raise NotImplementedError

    def refresh(self, repo: Repo) -> ToolResult:
        raise NotImplementedError

    def install(self, names: List[str]) -> ToolResult:
        raise NotImplementedError

    def install_collections(self, names: List[str]) -> ToolResult:
        raise NotImplementedError

    def remove(self, names: List[str]) -> ToolResult:
        raise NotImplementedError

    def image_repo_text(self, repo: Repo, gpg: Tuple[bool, bool], keys_in_image: List[str]) -> str:
        raise NotImplementedError

    def missing_packages(self, lines: List[str], returncode: int, names: List[str]) -> List[str]:
        """The packages the tool's output says it could not find (per tool)."""
        raise NotImplementedError

    def conflict_problems(self, lines: List[str]) -> List[str]:
        """The dependency problems the tool's output reports (per tool)."""
        raise NotImplementedError

    def classify_install_failure(self, result: ToolResult, names: List[str], what: str) -> PluginError:
        """A failed install, classified from the tool's output: missing packages, dependency conflicts,
        signature and TLS failures, unreachable repositories (transient), else a generic failure."""
        lines = result.lines
        details = {"packages": names, "section": what, "exit_code": result.returncode,
                   "repositories": [r.alias for r in self.build_repos], "output_tail": result.tail(15)}
        missing = self.missing_packages(lines, result.returncode, names)
        if missing:
            quoted = ", ".join(f"'{m}'" for m in missing)
            details["missing"] = missing
            return fail("package_not_found", "user",
                        f"package{'s' if len(missing) > 1 else ''} {quoted} not found in repositories {self.repo_list_text()}",
                        details, path=f"/packages/{what}")
        problems = self.conflict_problems(lines)
        if problems:
            return fail("package_conflict", "user", f"the {what} packages cannot be installed: {problems[0]}",
                        dict(details, problems=problems), path=f"/packages/{what}")
        line = first_match(lines, _SIGNATURE)
        if line:
            return fail("signature_invalid", "config", f"package signature check failed while installing {what} "
                        f"packages: {line}", details, hint="check the signing keys configured for the repositories")
        line = first_match(lines, _TLS)
        if line:
            return fail("tls_untrusted", "environment", f"TLS certificate verification failed while downloading "
                        f"{what} packages; is the site CA configured? ({line})", details)
        line = first_match(lines, _UNREACHABLE)
        if line:
            return fail("repository_unreachable", "transient", f"a repository became unreachable while downloading "
                        f"{what} packages: {line}", details, retry_after_seconds=30)
        return fail("install_failed", "user", f"{self.tool} could not install the {what} packages "
                    f"(exit status {result.returncode}): {'; '.join(result.tail(3))}", details, path=f"/packages/{what}")

    #: Per tool: how its output names a collection it could not find (group 1), what that means, and a hint.
    collection_missing = ""
    collection_reason = ""
    collection_hint: Optional[str] = None

    def classify_collection_failure(self, result: ToolResult, names: List[str], what: str) -> PluginError:
        missing = unique_matches(result.lines, self.collection_missing) if self.collection_missing else []
        if missing:
            quoted = ", ".join(f"'{m}'" for m in missing)
            return fail("collection_not_found", "user",
                        f"collection{'s' if len(missing) > 1 else ''} {quoted} not found in repositories "
                        f"{self.repo_list_text()}{self.collection_reason}",
                        {"collections": missing, "section": what, "repositories": [r.alias for r in self.build_repos]},
                        path=f"/collections/{what}", hint=self.collection_hint)
        return self.classify_install_failure(result, names, what)

    def tool_version(self) -> str:
        try:
            out = subprocess.run([self.tool, "--version"], stdin=subprocess.DEVNULL, capture_output=True,
                                 text=True, timeout=30, env=self.host_env()).stdout
            return out.strip().splitlines()[0] if out.strip() else "?"
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    # ---------------------------------------------------------------- run
    def required_commands(self) -> List[str]:
        return [self.tool, "rpm", "chroot", "tar", "rsync", "openssl", "mount", "umount"]

    def run(self) -> Dict[str, Any]:
        started = time.monotonic()
        self.load()
        missing = [c for c in self.required_commands() if shutil.which(c, path=HOST_PATH) is None]
        if missing:
            raise fail("missing_tool", "environment", f"required command(s) not found: {', '.join(missing)}",
                       {"command": missing[0], "commands": missing}, hint="run scripts/install-deps (Debian 12)")
        self.setup_workdirs()
        self.session = RootSession(self.root, self.state, self.runner)
        stages = [
            ("repositories", "package repositories", self.stage_repositories),
            ("bootstrap", "bootstrap packages", lambda: self.stage_packages("bootstrap")),
            ("post_bootstrap.sh", "post_bootstrap.sh",
             lambda: self.stage_script("post_bootstrap.sh", self.desc.post_bootstrap_sh)),
            ("image", "image packages", lambda: self.stage_packages("image")),
            ("trust", "site CA in the image trust store", self.stage_trust),
            ("overlay", "root/ overlay", self.stage_overlay),
            ("users", "users, groups and system settings", self.stage_users),
            ("repos-in-image", "repositories written into the image", self.stage_image_repos),
            ("config.sh", "config.sh", lambda: self.stage_script("config.sh", self.desc.config_sh)),
            ("uninstall", "uninstall packages", self.stage_uninstall),
            ("delete", "delete packages", self.stage_delete),
            ("images.sh", "images.sh", lambda: self.stage_script("images.sh", self.desc.images_sh)),
            ("rpmdb", "rpm database", self.stage_rpmdb),
            ("selinux", "SELinux file labels", self.stage_selinux),
            ("reproducible", "build-time records (reproducible builds)", self.stage_reproducible),
        ]
        total = len(stages) + 1
        self.ctx.progress("build-root", "begin", 0, total, "steps",
                          title=f"building the root of '{self.desc.name}' with {self.tool}")
        self.log("info", f"building '{self.desc.name}' {self.desc.version} ({self.distro_family}, {self.package_manager}, "
                         f"{self.arch}) into {self.root}")
        try:
            self.session.setup_dev()
            for number, (name, title, function) in enumerate(stages, start=1):
                self.ctx.check_cancelled()
                stage_started = time.monotonic()
                self.ctx.progress("build-root", "report", number - 1, total, "steps", f"{name}: {title}")
                function()
                self.stage_seconds[name] = round(time.monotonic() - stage_started, 3)
        finally:
            self.teardown()
        self.ctx.check_cancelled()
        self.ctx.progress("build-root", "report", total - 1, total, "steps", "package-list: installed packages")
        packages = self.package_list()
        listing = os.path.join(self.out, "packages.json")
        with open(listing, "w", encoding="utf-8") as f:
            json.dump(packages, f, indent=1)
            f.write("\n")
        self.ctx.progress("build-root", "end", total, total, "steps", "done")
        seconds = round(time.monotonic() - started, 3)
        self.log("info", f"built the root with {len(packages)} packages in {seconds:.1f} s")
        self.ctx.artifact("rootfs", self.root, "dir")
        self.metadata.update({
            "builder": self.tool, "tool_version": self.tool_version(), "seconds": seconds,
            "stage_seconds": self.stage_seconds,
            "repositories": [{"alias": r.alias, "url": r.display_url, "priority": r.priority,
                              "imageinclude": r.imageinclude, "imageonly": r.imageonly} for r in self.repos],
            "signing_keys": len(self.keys), "site_ca": bool(self.ca_certs), "warnings": self.warnings,
            "missing_commands": self.missing_commands,
        })
        return {
            "outputs": {"rootfs": self.ctx.dir_ref(self.root),
                        "package_list": self.ctx.file_ref(listing, media_type="application/json")},
            "metadata": self.metadata,
            "facts": {"package_count": len(packages), "rpmdb_path": self.metadata.get("rpmdb_path", RPMDB)},
        }

    # ---------------------------------------------------------------- stages
    def setup_workdirs(self) -> None:
        if os.path.lexists(self.root):
            self.log("info", f"removing the previous contents of {self.root}")
            remove_tree(self.root)
        os.makedirs(self.root, mode=0o755)
        if os.path.lexists(self.tmp):
            remove_tree(self.tmp)
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.home, mode=0o700)
        # Debian's rpm keeps its database in ~/.rpmdb unless told otherwise; zypper and dnf load
        # librpm with this HOME, so the image's database lands in /usr/lib/sysimage/rpm.
        with open(os.path.join(self.home, ".rpmmacros"), "w", encoding="utf-8") as f:
            f.write(f"%_dbpath {RPMDB}\n")
            if self.desc.rpm_excludedocs:
                f.write("%_excludedocs 1\n")

    def stage_repositories(self) -> None:
        result = self.run_tool(self.rpm_argv("--initdb"), source="rpm")
        if not result.ok:
            raise fail("rpmdb_failed", "environment", f"rpm --initdb failed in {self.root}: {'; '.join(result.tail(3))}")
        for key in self.keys:
            result = self.run_tool(self.rpm_argv("--import", key), source="rpm")
            if not result.ok:
                raise fail("invalid_signing_key", "config", f"cannot import signing key {key}: {'; '.join(result.tail(3))}",
                           {"key": key})
        if self.keys:
            self.log("info", f"imported {len(self.keys)} signing key(s) into the image's rpm database")
        self.setup_tls()
        self.seed_site_ca()
        self.prepare_tool()
        for repo in self.build_repos:
            gpg = self.gpg_flags(repo)
            self.write_build_repo(repo, gpg)
            self.log("info", f"repository '{repo.alias}': {repo.display_url}"
                             f" (priority {repo.priority if repo.priority is not None else 'default'},"
                             f" repo_gpgcheck {'on' if gpg[0] else 'off'}, pkg_gpgcheck {'on' if gpg[1] else 'off'})")
        for repo in self.build_repos:
            self.ctx.check_cancelled()
            result = self.refresh(repo)
            if not result.ok:
                raise classify_repository_failure(repo, result, bool(self.ca_certs))

    def gpg_flags(self, repo: Repo) -> Tuple[bool, bool]:
        """(repository metadata check, package signature check): as the recipe says, else on when
        signing keys are configured (packages also when preferences rpm-check-signatures is set)."""
        repo_check = repo.repo_gpgcheck if repo.repo_gpgcheck is not None else bool(self.keys)
        pkg_check = repo.pkg_gpgcheck if repo.pkg_gpgcheck is not None else (
            bool(self.keys) or self.desc.rpm_check_signatures)
        return repo_check, pkg_check

    def setup_tls(self) -> None:
        """A combined CA bundle (host system CAs + site CA) and a hashed CA directory for the tools."""
        self.tls_bundle: Optional[str] = None
        self.tls_capath: Optional[str] = None
        if not self.ca_certs:
            return
        tls = os.path.join(self.tmp, "tls")
        capath = os.path.join(tls, "capath")
        os.makedirs(capath, mode=0o755)
        system = system_ca_bundle()
        with open(os.path.join(tls, "bundle.pem"), "wb") as out:
            if system:
                with open(system, "rb") as f:
                    out.write(f.read().rstrip(b"\n") + b"\n")
            for cert in self.ca_certs:
                out.write(cert + b"\n")
        # The CA directory holds the host's system CAs too, so that it is complete on its own whatever
        # libzypp/libcurl do with their default bundle when ssl_capath is set.
        system_certs: List[bytes] = []
        if system:
            with open(system, "rb") as f:
                system_certs = pem_certificates(f.read())
        for prefix, certs in (("site-ca", self.ca_certs), ("system", system_certs)):
            for number, cert in enumerate(certs):
                with open(os.path.join(capath, f"{prefix}-{number}.pem"), "wb") as f:
                    f.write(cert + b"\n")
        result = self.run_tool(["openssl", "rehash", capath], source="openssl", echo=False)
        if not result.ok:
            raise fail("missing_tool", "environment", f"openssl rehash failed: {'; '.join(result.tail(3))}",
                       {"command": "openssl"})
        self.tls_bundle = os.path.join(tls, "bundle.pem")
        self.tls_capath = capath
        self.log("info", f"trusting the site CA ({len(self.ca_certs)} certificate(s) from {self.ca_bundle}) "
                         "for repository TLS")

    def seed_site_ca(self) -> None:
        """Puts the site CA into the image's anchors directory before the first package, so that the
        trust-store package's own scriptlet (update-ca-certificates / update-ca-trust) includes it."""
        if not self.ca_certs:
            return
        anchors = makedirs_in_root(self.root, self.layout["anchors"])
        atomic_write(os.path.join(anchors, SITE_CA_NAME), b"\n".join(self.ca_certs) + b"\n", 0o644)
        self.log("info", f"seeded the site CA as {self.layout['anchors']}/{SITE_CA_NAME}")

    def stage_packages(self, section: str) -> None:
        names = self.desc.packages[section]
        collections = self.desc.collections[section]
        if section == "bootstrap" and not names and not collections:
            self.warn("the description has no bootstrap packages")
        if names:
            self.log("info", f"installing {len(names)} {section} package(s): {' '.join(names)}")
            result = self.install(names)
            if not result.ok:
                raise self.classify_install_failure(result, names, section)
        if collections:
            self.log("info", f"installing {section} collection(s): {' '.join(collections)}")
            result = self.install_collections(collections)
            if not result.ok:
                raise self.classify_collection_failure(result, collections, section)
        for archive in self.desc.archives:
            if archive["section"] == section:
                self.extract_archive(archive)
        for entry in self.desc.files:
            if entry["section"] == section:
                self.copy_file(entry)

    def copy_file(self, entry: Dict[str, Any]) -> None:
        """A <file> of the description: the recipe's file (or directory) copied to its target in the image, then
        chown'd and chmod'ed in a chroot when owner/permissions are set, so user and group names resolve against
        the image's own /etc/passwd and chmod takes kiwi's syntax (octal or u+x)."""
        name = entry["name"]
        source = os.path.normpath(os.path.join(self.recipe, name))
        if name.startswith("/") or not is_inside(self.recipe, source) or not os.path.lexists(source):
            raise fail("file_missing", "user", f"file '{name}' is not in the recipe (a <file> names a file of the "
                                               "description directory, relative to it)", {"file": name},
                       path=entry["pointer"])
        if not is_inside(self.recipe, os.path.realpath(source)):
            raise fail("file_unsafe", "user", f"file '{name}' leads outside the recipe through a symlink; refused",
                       {"file": name}, path=entry["pointer"])
        target = entry["target"]
        parent = makedirs_in_root(self.root, os.path.dirname(target.rstrip("/")) or "/")
        destination = os.path.join(parent, os.path.basename(target.rstrip("/")))
        if not is_inside(self.root, parent):
            raise fail("file_unsafe", "user", f"file '{name}': its target {target} goes through a symlink that leads "
                                              "outside the image; refused", {"file": name}, path=entry["pointer"])
        result = self.run_tool(["cp", "-a", "--no-target-directory", "--remove-destination", source, destination],
                               source="cp")
        if not result.ok:
            raise fail("file_failed", "environment", f"copying file '{name}' to {target} failed: "
                                                     f"{'; '.join(result.tail(3))}", {"file": name})
        os.lchown(destination, 0, 0) if os.path.islink(destination) else os.chown(destination, 0, 0)
        for tool, value in (("chown", entry.get("owner")), ("chmod", entry.get("permissions"))):
            if not value:
                continue
            shell = shell_in_root(self.root)
            argv = (["chroot", self.root, tool, "-R" if os.path.isdir(destination) else "--", value, target]
                    if shell else None)
            result = self.run_tool(argv, source=tool, env=chroot_env()) if argv else None
            if result is None or not result.ok:
                why = "; ".join(result.tail(3)) if result else "the image has no shell or tools to run it"
                raise fail("file_failed", "user", f"file '{name}': {tool} {value} {target} failed: {why}",
                           {"file": name, tool: value}, path=entry["pointer"])
        self.log("info", f"copied file '{name}' to {target}"
                         + (f" (owner {entry['owner']})" if entry.get("owner") else "")
                         + (f" (permissions {entry['permissions']})" if entry.get("permissions") else ""))

    def repo_list_text(self) -> str:
        return ", ".join(r.alias for r in self.build_repos)

    def extract_archive(self, archive: Dict[str, str]) -> None:
        name = archive["name"]
        path = os.path.normpath(os.path.join(self.recipe, name))
        if name.startswith("/") or not is_inside(self.recipe, path) or not os.path.isfile(path):
            raise fail("archive_missing", "user", f"archive '{name}' is not a file in the recipe",
                       {"archive": name}, path=archive["pointer"])
        try:
            with tarfile.open(path, "r:*") as tar:
                members = tar.getmembers()
        except (tarfile.TarError, OSError) as exc:
            raise fail("archive_invalid", "user", f"archive '{name}' cannot be read: {exc}", {"archive": name},
                       path=archive["pointer"])
        base = makedirs_in_root(self.root, archive.get("target_dir") or "/")
        links = set()
        for member in members:
            member_name = member.name
            while member_name.startswith("./"):
                member_name = member_name[2:]
            parts = [p for p in member_name.split("/") if p not in ("", ".")]
            problem = None
            if member.name.startswith("/"):
                problem = "has an absolute path"
            elif ".." in parts:
                problem = "contains '..'"
            elif member.islnk() and (member.linkname.startswith("/") or ".." in member.linkname.split("/")):
                problem = f"is a hard link to {member.linkname!r} outside the archive"
            else:
                for depth in range(1, len(parts)):
                    prefix = "/".join(parts[:depth])
                    if prefix in links:
                        problem = f"goes through the symlink '{prefix}' of the same archive"
                        break
                    host = os.path.join(base, prefix)
                    if os.path.islink(host) and not is_inside(self.root, host):
                        problem = f"goes through /{prefix}, a symlink in the image that leads outside the root"
                        break
            if problem:
                raise fail("archive_unsafe", "user", f"archive '{name}': member '{member.name}' {problem}; refused",
                           {"archive": name, "member": member.name}, path=archive["pointer"])
            if member.issym():
                links.add("/".join(parts))
        result = self.run_tool(["tar", "-C", base, "--numeric-owner", "-xpf", path], source="tar")
        if not result.ok:
            raise fail("archive_invalid", "user", f"archive '{name}' could not be extracted: {'; '.join(result.tail(3))}",
                       {"archive": name}, path=archive["pointer"])
        self.log("info", f"extracted archive '{name}' ({len(members)} entries) into {archive.get('target_dir') or '/'}")

    def stage_trust(self) -> None:
        if not self.ca_certs:
            self.log("info", "no site CA configured")
            return
        anchors = makedirs_in_root(self.root, self.layout["anchors"])
        atomic_write(os.path.join(anchors, SITE_CA_NAME), b"\n".join(self.ca_certs) + b"\n", 0o644)
        tool = find_in_root(self.root, self.layout["tools"])
        if tool and shell_in_root(self.root):
            result = self.run_tool(["chroot", self.root, tool, *self.layout["tool_args"]], source=os.path.basename(tool),
                                   env=chroot_env())
            if not result.ok:
                self.warn(f"{tool} failed in the image (exit status {result.returncode}); the inject-ca phase can "
                          "retry it")
        else:
            self.log("info", f"the image has no {os.path.basename(self.layout['tools'][0])}; the site CA stays an "
                             "anchor until the trust store is rebuilt (inject-ca does that)")

    def stage_overlay(self) -> None:
        if not self.desc.overlay:
            self.log("info", "no overlay tree")
            return
        source = os.path.normpath(os.path.join(self.recipe, self.desc.overlay))
        if not is_inside(self.recipe, source) or not os.path.isdir(source):
            raise fail("overlay_missing", "user", f"overlay directory '{self.desc.overlay}' is not in the recipe",
                       path="/overlay")
        # rsync --keep-dirlinks follows directory symlinks of the image: refuse those that leave it.
        for directory, dirnames, _files in os.walk(source):
            for dirname in dirnames:
                rel = os.path.relpath(os.path.join(directory, dirname), source)
                host = os.path.join(self.root, rel)
                if os.path.islink(host) and not is_inside(self.root, host):
                    raise fail("overlay_unsafe", "user",
                               f"overlay directory '{rel}' would be written through /{rel}, a symlink in the image "
                               f"that leads outside the root", path="/overlay")
        result = self.run_tool(["rsync", "-rlptDH", "--keep-dirlinks", "--exclude=.gitkeep", source + "/",
                                self.root + "/"], source="rsync")
        if not result.ok:
            raise fail("overlay_failed", "environment", f"copying the overlay failed: {'; '.join(result.tail(3))}")
        count = sum(len(f) + len(d) for _, d, f in os.walk(source))
        self.log("info", f"copied the overlay '{self.desc.overlay}/' ({count} entries)")

    def stage_users(self) -> None:
        accounts = Accounts(self.root, self.runner, self.distro_family)
        for user in self.desc.users:
            accounts.apply_user(user)
        accounts.save()
        self.apply_system_settings()

    def apply_system_settings(self) -> None:
        desc = self.desc
        if desc.timezone:
            zone = resolve_in_root(self.root, f"/usr/share/zoneinfo/{desc.timezone}")
            localtime = resolve_in_root(self.root, "/etc/localtime", follow_last=False)
            if os.path.isfile(zone) and ".." not in desc.timezone.split("/"):
                if os.path.lexists(localtime):
                    os.unlink(localtime)
                os.makedirs(os.path.dirname(localtime), exist_ok=True)
                os.symlink(f"../usr/share/zoneinfo/{desc.timezone}", localtime)
                self.log("info", f"timezone {desc.timezone}")
            else:
                self.log("info", f"timezone {desc.timezone}: no /usr/share/zoneinfo/{desc.timezone} in the image; skipped")
        if desc.locale and desc.locale.split(",")[0] not in ("POSIX", "C"):
            lang = desc.locale.split(",")[0]
            if "." not in lang:
                lang += ".UTF-8"
            etc = makedirs_in_root(self.root, "/etc")
            atomic_write(os.path.join(etc, "locale.conf"), f"LANG={lang}\n".encode())
            self.log("info", f"locale {lang} (/etc/locale.conf)")
        if desc.keytable:
            etc = makedirs_in_root(self.root, "/etc")
            atomic_write(os.path.join(etc, "vconsole.conf"), f"KEYMAP={desc.keytable}\n".encode())
            self.log("info", f"keytable {desc.keytable} (/etc/vconsole.conf)")

    def stage_image_repos(self) -> None:
        wanted = [r for r in self.repos if r.imageinclude or r.imageonly]
        if not wanted:
            self.log("info", "no imageinclude repositories")
            return
        keys_in_image = self.copy_keys_into_image() if self.keys else []
        directory = makedirs_in_root(self.root, self.image_repo_dir)
        for repo in wanted:
            if not repo.is_remote:
                self.warn(f"repository '{repo.alias}' ({repo.display_url}) is a local path of the build host; "
                          "written into the image anyway")
            if repo.password:
                self.warn(f"repository '{repo.alias}': credentials are not written into the image")
            text = self.image_repo_text(repo, self.gpg_flags(repo), keys_in_image)
            atomic_write(os.path.join(directory, f"{repo.alias}.repo"), text.encode(), 0o644)
            self.log("info", f"wrote {self.image_repo_dir}/{repo.alias}.repo into the image")

    def copy_keys_into_image(self) -> List[str]:
        return []

    #: Where each script's name is in description.json (error pointers).
    SCRIPT_POINTERS = {"config.sh": "/config_sh", "images.sh": "/images_sh", "post_bootstrap.sh": "/post_bootstrap_sh"}

    def stage_script(self, label: str, name: Optional[str]) -> None:
        """Runs one of the description's scripts as kiwi does: copied to /image/, executed (not sourced) in a
        chroot with /proc, with /.profile (the kiwi_* variables) and /.kconfig (ims_kconfig.sh, our
        implementation of kiwi's documented function library) present and removed afterwards. A call to a
        command the image does not have is reported (script, line, command) as a warning, or fails the build
        with config strict_scripts; mounts the script leaves behind are released."""
        pointer = self.SCRIPT_POINTERS.get(label, "/" + label.replace(".", "_"))
        if not name:
            self.log("info", f"no {label}")
            return
        path = os.path.normpath(os.path.join(self.recipe, name))
        if name.startswith("/") or not is_inside(self.recipe, path) or not os.path.isfile(path):
            raise fail("script_missing", "user", f"{label} '{name}' is not a file in the recipe", path=pointer)
        shell = shell_in_root(self.root)
        if shell is None:
            raise fail("no_shell", "user", f"{label} needs a shell in the image (/bin/sh or /bin/bash); add a package "
                                           "that provides one", {"script": label})
        library = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ims_kconfig.sh")
        if not os.path.isfile(library):
            raise fail("missing_tool", "environment", f"the builder's kiwi function library {library} is missing",
                       hint="run scripts/build-plugins")
        image_dir = makedirs_in_root(self.root, "/image")
        shutil.copyfile(path, os.path.join(image_dir, label))
        os.chmod(os.path.join(image_dir, label), 0o755)
        variables = self.kiwi_variables()
        profile = profile_text(variables).encode()
        atomic_write(os.path.join(image_dir, ".profile"), profile)
        dot_profile = os.path.join(self.root, ".profile")
        created_profile = False
        if not os.path.lexists(dot_profile):
            atomic_write(dot_profile, profile)
            created_profile = True
        kconfig = os.path.join(self.root, ".kconfig")
        if os.path.lexists(kconfig):
            self.warn(f"the image already has /.kconfig; it is replaced by ims's kiwi function library for {label} "
                      "and removed afterwards, as kiwi does")
        with open(library, "rb") as f:
            atomic_write(kconfig, f.read())
        self.session.mount_proc()
        try:
            result = self.run_tool(["chroot", self.root, shell, f"/image/{label}"], source=label,
                                   env=chroot_env(variables))
        finally:
            remove_tree(image_dir)
            if created_profile and os.path.lexists(dot_profile):
                os.unlink(dot_profile)
            if os.path.lexists(kconfig):
                os.unlink(kconfig)
            self.session.unmount()
            released, stuck = self.session.release_left_mounts()
            if released:
                self.warn(f"{label} left {', '.join(released)} mounted; ims unmounted "
                          f"{'it' if len(released) == 1 else 'them'} (end the script with baseCleanMount)")
            if stuck:
                self.warn(f"{label} left {', '.join(stuck)} mounted and ims could not unmount "
                          f"{'it' if len(stuck) == 1 else 'them'}")
        missing = missing_commands(result.lines, label)
        for item in missing:
            self.missing_commands.append(item)
            self.warn(f"{label} line {item['line']}: '{item['command']}' is not a command in the image, so that "
                      "line did nothing" if item["line"] else
                      f"{label}: '{item['command']}' is not a command in the image, so that call did nothing")
        if result.returncode != 0:
            status = (f"was killed by signal {-result.returncode}" if result.returncode < 0
                      else f"exited with status {result.returncode}")
            tail = result.tail(10)
            lacking = "".join(f"; line {m['line']}: '{m['command']}' is not a command in the image" for m in missing[:3])
            raise fail("script_failed", "user",
                       f"{label} {status}" + lacking + (f"; last output: {' | '.join(tail[-3:])}" if tail else ""),
                       {"script": label, "exit_code": result.returncode, "output_tail": tail,
                        "missing_commands": missing}, path=pointer)
        if missing and self.strict_scripts:
            first = missing[0]
            raise fail("script_command_missing", "user",
                       f"{label} line {first['line']}: '{first['command']}' is not a command in the image"
                       + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                       + "; with strict_scripts a missing command fails the build",
                       {"script": label, "missing_commands": missing}, path=pointer,
                       hint="add the package that provides it, or remove the call")
        self.log("info", f"{label} finished in {result.seconds:.1f} s")

    def kiwi_variables(self) -> Dict[str, str]:
        """The kiwi_* variables of /.profile: the engine's (description.json "profile", the whole set kiwi writes),
        over the few a hand-written description implies."""
        desc = self.desc
        values = {"kiwi_iname": desc.name, "kiwi_iversion": desc.version, "kiwi_profiles": ",".join(desc.profiles)}
        if desc.image_type:
            values["kiwi_type"] = desc.image_type
        if desc.locale:
            values["kiwi_language"] = desc.locale
        if desc.keytable:
            values["kiwi_keytable"] = desc.keytable
        if desc.timezone:
            values["kiwi_timezone"] = desc.timezone
        values.update(desc.profile)
        return values

    def installed(self, names: List[str]) -> Tuple[List[str], List[str]]:
        present, absent = [], []
        for name in names:
            result = self.run_tool(self.rpm_argv("-q", "--quiet", name), source="rpm", echo=False)
            (present if result.ok else absent).append(name)
        return present, absent

    def stage_uninstall(self) -> None:
        names = self.desc.packages["uninstall"]
        if not names:
            self.log("info", "no uninstall packages")
            return
        present, absent = self.installed(names)
        for name in absent:
            self.warn(f"uninstall: package '{name}' is not installed; skipped")
        if present:
            self.log("info", f"uninstalling {' '.join(present)} (with the packages that need them)")
            result = self.remove(present)
            if not result.ok:
                raise fail("uninstall_failed", "user", f"removing {', '.join(present)} failed: {'; '.join(result.tail(3))}",
                           {"packages": present, "output_tail": result.tail(15)}, path="/packages/uninstall")

    def stage_delete(self) -> None:
        names = self.desc.packages["delete"]
        if not names:
            self.log("info", "no delete packages")
            return
        present, absent = self.installed(names)
        for name in absent:
            self.warn(f"delete: package '{name}' is not installed; skipped")
        if present:
            self.log("info", f"deleting {' '.join(present)} (rpm -e --nodeps --noscripts)")
            result = self.run_tool(self.rpm_argv("-e", "--nodeps", "--noscripts", "--allmatches", *present), source="rpm")
            if not result.ok:
                raise fail("delete_failed", "user", f"rpm -e {' '.join(present)} failed: {'; '.join(result.tail(3))}",
                           {"packages": present, "output_tail": result.tail(15)}, path="/packages/delete")

    def image_rpm(self) -> ImageRpm:
        """The image's real rpm (found once per run; see ims_rootfs.real_rpm_in_root)."""
        if self._image_rpm is None:
            self._image_rpm = real_rpm_in_root(self.root)
            for path, said in self._image_rpm.refused:
                self.warn(f"the image's {path} is not rpm ('{path} --version' said: {said}); "
                                 "the database is kept and read with the host's rpm")
        return self._image_rpm

    #: Files the package manager writes about this build (logs, transaction history with the build
    #: host's paths and times). A reproducible build (SOURCE_DATE_EPOCH set) removes them.
    build_records: List[str] = []

    def read_install_sources(self) -> Dict[Nevra, str]:
        """Package -> repository alias, from the package manager's own records in the root (see the subclasses)."""
        return {}

    def stage_reproducible(self) -> None:
        """With SOURCE_DATE_EPOCH, the same recipe and packages must give a byte-identical root: remove the
        package manager's records of this build (times, host paths) and the time stamps in its state files.
        Which repository each package came from is read from those records first (for packages.json)."""
        aliases = {repo.alias for repo in self.repos}
        try:
            self.install_sources = {nevra: alias for nevra, alias in self.read_install_sources().items()
                                    if alias in aliases}
        except (OSError, UnicodeError) as exc:
            self.warn(f"cannot read which repository each package came from: {exc}")
        if "SOURCE_DATE_EPOCH" not in os.environ:
            return
        removed = remove_build_records(self.root, self.build_records)
        normalize_autoinstalled(self.root)
        self.metadata["reproducible_removed"] = removed
        if removed:
            self.log("info", f"reproducible build: removed {', '.join(removed)}")

    def stage_rpmdb(self) -> None:
        image_rpm = self.image_rpm()
        self.metadata["rpmdb_path"] = RPMDB
        if not image_rpm.found:
            self.log("info", "skipping 'rpmdb --rebuilddb': the image has no rpm; the database stays at "
                             f"{RPMDB} (sqlite, written by the host's rpm)")
            self.link_var_lib_rpm()
            self.metadata["rpmdb_rebuilt"] = False
            return
        rpm, tool = image_rpm.rpm, image_rpm.rebuild
        query = self.run_tool(["chroot", self.root, rpm, "--eval", "%{_dbpath}"], source="rpm", env=chroot_env(), echo=False)
        native = query.lines[-1].strip() if query.ok and query.lines and query.lines[-1].startswith("/") else RPMDB
        argv = ["chroot", self.root, tool, "--rebuilddb"]
        moved = resolve_in_root(self.root, native) != resolve_in_root(self.root, RPMDB)
        if moved:
            argv += ["--define", f"_dbpath {RPMDB}", "--define", f"_dbpath_rebuild {native}"]
        self.log("info", f"rebuilding the rpm database with the image's own rpm ({tool}); its database path is {native}")
        result = self.run_tool(argv, source="rpmdb", env=chroot_env())
        if not result.ok:
            raise fail("rpmdb_failed", "environment",
                       f"'rpmdb --rebuilddb' with the image's rpm failed: {'; '.join(result.tail(3))}",
                       {"output_tail": result.tail(15)})
        if moved:
            remove_tree(resolve_in_root(self.root, RPMDB))
        self.metadata["rpmdb_path"] = native
        self.metadata["rpmdb_rebuilt"] = True

    def stage_selinux(self) -> None:
        """Labels the root for its SELinux policy, as kiwi does at the end of prepare, when the image has one:
        /etc/selinux/config names SELINUXTYPE and SELINUX is not disabled. The image's own setfiles runs in a
        chroot; an image without it is labelled by the host's setfiles with -r (the image's policy and
        file_contexts either way). A policy that is configured but cannot be applied fails the build: an
        enforcing image with unlabelled files does not boot."""
        policy = selinux_policy(self.root)
        if policy is None:
            self.log("info", "no SELinux policy in the image (no /etc/selinux/config); no relabelling")
            return
        if policy["mode"] == "disabled":
            self.log("info", f"SELinux is disabled in /etc/selinux/config (SELINUXTYPE={policy['type']}); no relabelling")
            return
        for key, what in (("file_contexts", "contexts/files/file_contexts"), ("binary", "policy/policy.N")):
            if not policy[key]:
                raise fail("selinux_failed", "user",
                           f"/etc/selinux/config selects the SELinux policy '{policy['type']}' "
                           f"(SELINUX={policy['mode']}) but the image has no /etc/selinux/{policy['type']}/{what}; "
                           "install the policy package in the image or set SELINUX=disabled",
                           {"policy": policy["type"], "missing": what})
        inside = find_in_root(self.root, ("/usr/sbin/setfiles", "/sbin/setfiles"))
        if inside:
            argv = ["chroot", self.root, inside, "-F", "-p", "-c", policy["binary"], policy["file_contexts"], "/"]
            env, how = chroot_env(), f"the image's {inside}"
        elif shutil.which("setfiles", path=HOST_PATH):
            host_root = os.path.abspath(self.root)
            argv = ["setfiles", "-F", "-r", host_root, "-c", resolve_in_root(self.root, policy["binary"]),
                    resolve_in_root(self.root, policy["file_contexts"]), host_root]
            env, how = self.host_env(), "the host's setfiles -r (the image has none)"
        else:
            raise fail("selinux_failed", "environment",
                       f"the image's SELinux policy '{policy['type']}' needs relabelling, but neither the image nor "
                       "the host has setfiles", {"policy": policy["type"]}, hint="apt-get install policycoreutils")
        self.log("info", f"labelling the root for SELinux policy '{policy['type']}' ({policy['binary']}) with {how}")
        if inside:
            self.session.mount_proc()  # libselinux labels through /proc/self/fd
        try:
            result = self.run_tool(argv, source="setfiles", env=env)
        finally:
            if inside:
                self.session.unmount()
        if not result.ok:
            raise fail("selinux_failed", "environment",
                       f"setfiles for SELinux policy '{policy['type']}' failed: {'; '.join(result.tail(3))}",
                       {"policy": policy["type"], "output_tail": result.tail(15)})
        self.metadata["selinux"] = {"policy": policy["type"], "mode": policy["mode"], "setfiles": how}

    def link_var_lib_rpm(self) -> None:
        """/var/lib/rpm -> ../../usr/lib/sysimage/rpm (as SUSE and newer RHEL have), when it is absent or an
        empty directory, so that tools looking in the old place find the database."""
        var_lib_rpm = resolve_in_root(self.root, "/var/lib/rpm", follow_last=False)
        if os.path.islink(var_lib_rpm):
            return
        if os.path.isdir(var_lib_rpm):
            if os.listdir(var_lib_rpm):
                return
            os.rmdir(var_lib_rpm)
        os.makedirs(os.path.dirname(var_lib_rpm), exist_ok=True)
        os.symlink("../../usr/lib/sysimage/rpm", var_lib_rpm)

    def package_list(self) -> List[Dict[str, Any]]:
        if self.metadata.get("rpmdb_rebuilt"):
            argv = ["chroot", self.root, self.image_rpm().rpm, "-qa", "--qf", PACKAGE_QUERY]
            env = chroot_env()
        else:
            argv = self.rpm_argv("-qa", "--qf", PACKAGE_QUERY)
            env = self.host_env()
        result = self.runner.run(argv, source="rpm", env=env, cwd=self.tmp, echo=False)
        if not result.ok:
            raise fail("rpmdb_failed", "environment", f"cannot list the installed packages: {'; '.join(result.tail(3))}")
        packages = []
        for line in result.lines:
            fields = line.split("\t")
            if len(fields) != 5 or fields[0] == "gpg-pubkey":
                continue
            name, epoch, version, release, arch = fields
            package = {"name": name, "epoch": int(epoch) if epoch.isdigit() else None, "version": version,
                       "release": release, "arch": None if arch == "(none)" else arch}
            # Only what the package manager recorded for exactly this package: absent stays absent.
            source = self.install_sources.get((name, int(epoch) if epoch.isdigit() else 0, version, release, arch))
            if source:
                package["repository"] = source
            packages.append(package)
        packages.sort(key=lambda p: (p["name"], p["version"], p["release"], p["arch"] or ""))
        return packages

    def teardown(self) -> None:
        """Always runs: unmount, remove the device nodes, /image and the tools' caches."""
        session = getattr(self, "session", None)
        if session is not None:
            session.teardown()
        if getattr(self, "root", None) and os.path.isdir(self.root):
            image_dir = os.path.join(self.root, "image")
            if os.path.isdir(image_dir) and not os.path.islink(image_dir):
                remove_tree(image_dir)
            self.clean_caches()

    def clean_caches(self) -> None:
        pass


# ============================================================================================
# Accounts: /etc/passwd, /etc/group, /etc/shadow, /etc/gshadow edited directly (no shell needed)


class Accounts:
    def __init__(self, root: str, runner: ToolRunner, family: str) -> None:
        self.root = root
        self.runner = runner
        self.family = family
        self.files: Dict[str, Optional[List[List[str]]]] = {}
        for name in ("passwd", "group", "shadow", "gshadow"):
            self.files[name] = self._read(name)
        if self.files["passwd"] is None:
            self.files["passwd"] = []
        if self.files["group"] is None:
            self.files["group"] = []
        self.changed: set = set()
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        self.today = str(int((int(epoch) if epoch and epoch.isdigit() else time.time()) // 86400))

    def _path(self, name: str) -> str:
        return resolve_in_root(self.root, f"/etc/{name}")

    def _read(self, name: str) -> Optional[List[List[str]]]:
        path = self._path(name)
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip()]

    def save(self) -> None:
        modes = {"passwd": 0o644, "group": 0o644, "shadow": 0o640, "gshadow": 0o640}
        for name in sorted(self.changed):
            rows = self.files[name]
            if rows is None:
                continue
            path = self._path(name)
            mode, uid, gid = modes[name], 0, 0
            if os.path.exists(path):
                st = os.stat(path)
                mode, uid, gid = st.st_mode & 0o7777, st.st_uid, st.st_gid
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
            text = "".join(":".join(row) + "\n" for row in rows)
            atomic_write(path, text.encode("utf-8", "surrogateescape"), mode, uid, gid)

    def _find(self, name: str, key: str) -> Optional[List[str]]:
        rows = self.files[name]
        return next((row for row in rows or [] if row and row[0] == key), None)

    def _free_id(self, name: str, index: int, start: int = 1000) -> int:
        used = {int(row[index]) for row in self.files[name] or [] if len(row) > index and row[index].isdigit()}
        value = start
        while value in used:
            value += 1
        return value

    def ensure_group(self, group: str, gid: Optional[int] = None) -> int:
        row = self._find("group", group)
        if row is not None:
            return int(row[2]) if len(row) > 2 and row[2].isdigit() else 0
        if gid is None or any(len(r) > 2 and r[2] == str(gid) for r in self.files["group"] or []):
            gid = self._free_id("group", 2)
        self.files["group"].append([group, "x", str(gid), ""])
        self.changed.add("group")
        if self.files["gshadow"] is not None:
            self.files["gshadow"].append([group, "!", "", ""])
            self.changed.add("gshadow")
        self.runner.log("info", f"created group {group} ({gid})")
        return gid

    def add_member(self, group: str, user: str) -> None:
        for name, index in (("group", 3), ("gshadow", 3)):
            row = self._find(name, group)
            if row is None:
                continue
            while len(row) <= index:
                row.append("")
            members = [m for m in row[index].split(",") if m]
            if user not in members:
                members.append(user)
                row[index] = ",".join(members)
                self.changed.add(name)

    def hash_password(self, password: str) -> str:
        result = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password + "\n", capture_output=True,
                                text=True, env={"PATH": HOST_PATH})
        if result.returncode != 0 or not result.stdout.startswith("$6$"):
            raise fail("user_failed", "environment", "cannot hash a password with openssl passwd -6")
        return result.stdout.strip()

    def apply_user(self, user: Dict[str, Any]) -> None:
        name = user["name"]
        pointer = user.get("pointer", "/users")
        groups = [g for g in (user.get("groups") or []) if isinstance(g, str) and g]
        for group in groups:
            if not _NAME_OK.match(group):
                raise fail("invalid_description", "user", f"user '{name}': group name {group!r} is not valid",
                           path=pointer + "/groups")
        existing = self._find("passwd", name)
        uid = user.get("id")
        if uid is not None and (not isinstance(uid, int) or isinstance(uid, bool) or uid < 0):
            raise fail("invalid_description", "user", f"user '{name}': id must be a non-negative integer",
                       path=pointer + "/id")
        if existing is None:
            if uid is None:
                uid = 0 if name == "root" else self._free_id("passwd", 2)
            elif any(len(r) > 2 and r[2] == str(uid) for r in self.files["passwd"]):
                raise fail("user_failed", "user", f"user '{name}': uid {uid} is already used", path=pointer + "/id")
        else:
            uid = int(existing[2]) if uid is None else uid
        # Primary group: the first listed; else the existing one; else 'users' (SUSE) or a private group.
        if groups:
            gid = self.ensure_group(groups[0])
        elif existing is not None:
            gid = int(existing[3])
        elif name == "root":
            gid = self.ensure_group("root", 0)
        elif self.family == "suse":
            gid = self.ensure_group("users", 100)
        else:
            gid = self.ensure_group(name, uid if isinstance(uid, int) else None)
        for group in groups[1:]:
            self.ensure_group(group)
            self.add_member(group, name)
        home = user.get("home") or (existing[5] if existing else ("/root" if name == "root" else f"/home/{name}"))
        shell = user.get("shell") or (existing[6] if existing else "/bin/bash")
        gecos = user.get("realname") if isinstance(user.get("realname"), str) else (existing[4] if existing else "")
        password = user.get("password")
        if isinstance(password, str):
            fmt = user.get("pwdformat") or "encrypted"
            hashed = self.hash_password(password) if fmt == "plain" else password
        else:
            hashed = None
        for field, value in (("home", home), ("shell", shell), ("realname", gecos)):
            if ":" in str(value) or "\n" in str(value):
                raise fail("invalid_description", "user", f"user '{name}': {field} must not contain ':'",
                           path=f"{pointer}/{field}")
        if hashed is not None and (":" in hashed or "\n" in hashed):
            raise fail("invalid_description", "user", f"user '{name}': the password must not contain ':'",
                       path=pointer + "/password")
        shadow = self.files["shadow"]
        passwd_field = "x" if shadow is not None else (hashed or "!")
        row = [name, passwd_field, str(uid), str(gid), gecos, home, shell]
        if existing is not None:
            if shadow is None and hashed is None:
                row[1] = existing[1]
            existing[:] = row
        else:
            self.files["passwd"].append(row)
        self.changed.add("passwd")
        if shadow is not None:
            srow = self._find("shadow", name)
            if srow is None:
                shadow.append([name, hashed or "!", self.today, "0", "99999", "7", "", "", ""])
            elif hashed is not None:
                while len(srow) < 9:
                    srow.append("")
                srow[1], srow[2] = hashed, self.today
            self.changed.add("shadow")
        self._make_home(home, uid, gid)
        self.runner.log("info", f"{'updated' if existing else 'created'} user {name} (uid {uid}, gid {gid}, home {home})")

    def _make_home(self, home: str, uid: int, gid: int) -> None:
        if not home.startswith("/") or home in ("/", "/dev/null", "/nonexistent"):
            return
        host = resolve_in_root(self.root, home)
        if os.path.lexists(host):
            return
        os.makedirs(host, mode=0o700)
        skel = resolve_in_root(self.root, "/etc/skel")
        if os.path.isdir(skel):
            shutil.copytree(skel, host, symlinks=True, dirs_exist_ok=True)
        for directory, dirnames, filenames in os.walk(host):
            for entry in [directory] + [os.path.join(directory, n) for n in dirnames + filenames]:
                os.lchown(entry, uid, gid)
        os.chmod(host, 0o700)


# ============================================================================================
# zypper


class ZypperBuilder(RootBuilder):
    tool = "zypper"
    build_records = ZYPPER_BUILD_RECORDS

    source = "zypper"
    family = "suse"
    image_repo_dir = "/etc/zypp/repos.d"

    def prepare_tool(self) -> None:
        conf = os.path.join(self.tmp, "zypper")
        self.reposd = os.path.join(conf, "repos.d")
        os.makedirs(self.reposd, mode=0o700)
        self.zypp_conf = os.path.join(conf, "zypp.conf")
        self.zypper_conf = os.path.join(conf, "zypper.conf")
        lines = ["[main]", "solver.onlyRequires = true", "download.use_deltarpm = false",
                 f"rpm.install.excludedocs = {'yes' if self.desc.rpm_excludedocs else 'no'}"]
        if self.arch != platform.machine():
            lines.append(f"arch = {self.arch}")
            self.log("info", f"building for {self.arch} on a {platform.machine()} host: package scriptlets and scripts "
                     "run through the host's binfmt_misc interpreter (ims checks for one, or registers it, before the job)")
        with open(self.zypp_conf, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        with open(self.zypper_conf, "w", encoding="utf-8") as f:
            f.write("[main]\n")
        # Explicit keys are the only trusted ones; without keys, a repository that asks for checks may
        # offer its own key (repomd.xml.key) and zypper trusts it on first use, as kiwi does.
        self.auto_import = not self.keys
        self.metadata["zypper_gpg_auto_import_keys"] = self.auto_import

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        # The build-side URLs carry ?ssl_capath=<host dir>; keep that out of logs and messages.
        self.runner.rewrites.append((re.compile(r"[?&]ssl_capath=[^\s\]'\"]*"), ""))

    def tool_env(self) -> Dict[str, str]:
        return self.host_env({"ZYPP_CONF": getattr(self, "zypp_conf", "/dev/null"),
                              "ZYPP_LOCK_TIMEOUT": "30"})

    def base_argv(self) -> List[str]:
        argv = ["zypper", "--non-interactive", "--no-color", "--root", self.root, "--reposd-dir", self.reposd,
                "--config", self.zypper_conf]
        if self.auto_import:
            argv.append("--gpg-auto-import-keys")
        if self.releasever:
            argv += ["--releasever", self.releasever]
        return argv

    def _url(self, repo: Repo, for_image: bool) -> str:
        url = repo.url
        if repo.type == "rpm-dir" and url.startswith("file://"):
            url = "dir://" + url[len("file://"):]
        if not for_image and repo.username:
            parts = urllib.parse.urlsplit(url)
            cred = urllib.parse.quote(repo.username, safe="")
            if repo.password:
                cred += ":" + urllib.parse.quote(repo.password, safe="")
                self.runner.add_redaction(urllib.parse.quote(repo.password, safe=""))
                self.runner.add_redaction(repo.password)
            url = urllib.parse.urlunsplit((parts.scheme, f"{cred}@{parts.netloc}", parts.path, parts.query, parts.fragment))
        if not for_image and self.tls_capath and url.startswith("https://"):
            url += ("&" if "?" in url else "?") + "ssl_capath=" + urllib.parse.quote(self.tls_capath, safe="/")
        return url

    def _repo_text(self, repo: Repo, gpg: Tuple[bool, bool], for_image: bool) -> str:
        repo_check, pkg_check = gpg
        rtype = {"rpm-md": "rpm-md", "rpm-dir": "plaindir", "yast2": "yast2"}[repo.type]
        lines = [f"[{repo.alias}]", f"name={repo.alias}", "enabled=1", f"autorefresh={1 if for_image else 0}",
                 f"baseurl={self._url(repo, for_image)}", f"type={rtype}", "keeppackages=0",
                 f"gpgcheck={1 if (repo_check or pkg_check) else 0}",
                 f"repo_gpgcheck={1 if repo_check else 0}", f"pkg_gpgcheck={1 if pkg_check else 0}"]
        if repo.priority is not None:
            lines.append(f"priority={repo.priority}")
        return "\n".join(lines) + "\n"

    def write_build_repo(self, repo: Repo, gpg: Tuple[bool, bool]) -> None:
        path = os.path.join(self.reposd, f"{repo.alias}.repo")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(self._repo_text(repo, gpg, for_image=False))

    def image_repo_text(self, repo: Repo, gpg: Tuple[bool, bool], keys_in_image: List[str]) -> str:
        return self._repo_text(repo, gpg, for_image=True)

    def refresh(self, repo: Repo) -> ToolResult:
        return self.run_tool(self.base_argv() + ["refresh", "--force", repo.alias])

    def install(self, names: List[str]) -> ToolResult:
        return self.run_tool(self.base_argv() + ["install", "--no-recommends", "--auto-agree-with-licenses", "--"] + names)

    def install_collections(self, names: List[str]) -> ToolResult:
        # Debian's libzypp has no autopattern support, so pattern:NAME solvables never exist. SUSE's
        # pattern packages provide "pattern() = NAME": install through that capability instead.
        self.log("info", "installing collections through the 'pattern() = NAME' capability of pattern packages "
                         "(Debian's zypper cannot read SUSE pattern metadata)")
        return self.run_tool(self.base_argv() + ["install", "--no-recommends", "--auto-agree-with-licenses", "--"]
                             + [f"pattern() = {n}" for n in names])

    def remove(self, names: List[str]) -> ToolResult:
        return self.run_tool(self.base_argv() + ["remove", "--clean-deps", "--"] + names)

    def read_install_sources(self) -> Dict[Nevra, str]:
        return zypper_install_sources(self.root)

    def missing_packages(self, lines: List[str], returncode: int, names: List[str]) -> List[str]:
        missing = unique_matches(lines, r"No provider of '(.+?)' found", r"Package '(.+?)' not found")
        # 104: ZYPPER_EXIT_INF_CAP_NOT_FOUND, a capability not found (the names, when the output does not say)
        return missing or (list(names) if returncode == 104 else [])

    def conflict_problems(self, lines: List[str]) -> List[str]:
        return [l.strip() for l in lines if l.strip().startswith("Problem:")]

    collection_missing = r"No provider of 'pattern\(\) = (.+?)' found"
    collection_reason = ": no package provides 'pattern() = NAME'"
    collection_hint = ("Debian's zypper cannot read SUSE pattern metadata (no autopattern support in its libzypp); "
                       "collections work only through pattern packages that provide 'pattern() = NAME'. List the "
                       "pattern's packages in the recipe instead.")

    def clean_caches(self) -> None:
        for path in ("/var/cache/zypp/packages", "/var/cache/zypp/raw", "/var/cache/zypp/solv", "/run/zypp.pid"):
            host = resolve_in_root(self.root, path, follow_last=False)
            if is_inside(self.root, os.path.dirname(host)) and os.path.lexists(host):
                remove_tree(host)


# ============================================================================================
# dnf


class DnfBuilder(RootBuilder):
    tool = "dnf"
    build_records = DNF_BUILD_RECORDS
    source = "dnf"
    family = "rhel"
    image_repo_dir = "/etc/yum.repos.d"

    def load(self) -> None:
        super().load()
        if self.package_manager not in ("dnf", "dnf4"):
            self.log("info", f"package manager '{self.package_manager}' requested; building with the host's dnf 4 "
                             "(the only dnf available on Debian)")

    def prepare_tool(self) -> None:
        conf = os.path.join(self.tmp, "dnf")
        self.reposd = os.path.join(conf, "repos.d")
        os.makedirs(self.reposd, mode=0o700)
        self.dnf_conf = os.path.join(conf, "dnf.conf")
        lines = ["[main]", "gpgcheck=0", "install_weak_deps=False", "keepcache=False", "plugins=0",
                 "skip_if_unavailable=False", "clean_requirements_on_remove=True", "best=True",
                 "installonly_limit=0", f"reposdir={self.reposd}", "metadata_expire=-1", "debuglevel=2"]
        if self.desc.rpm_excludedocs:
            lines.append("tsflags=nodocs")
        with open(self.dnf_conf, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        self.forcearch = self.arch if self.arch != platform.machine() else None
        if self.forcearch:
            self.log("info", f"building for {self.arch} on a {platform.machine()} host: package scriptlets and scripts "
                     "run through the host's binfmt_misc interpreter (ims checks for one, or registers it, before the job)")
        if not self.releasever:
            self.log("info", "no releasever given (config.releasever); using 0 like kiwi does")

    def base_argv(self) -> List[str]:
        argv = ["dnf", "-y", "--color=never", "-c", self.dnf_conf, "--installroot", self.root,
                f"--setopt=reposdir={self.reposd}", "--setopt=install_weak_deps=False",
                "--releasever", self.releasever or "0"]
        if self.forcearch:
            argv += ["--forcearch", self.forcearch]
        return argv

    def _repo_text(self, repo: Repo, gpg: Tuple[bool, bool], for_image: bool, keys: List[str]) -> str:
        repo_check, pkg_check = gpg
        lines = [f"[{repo.alias}]", f"name={repo.alias}", f"baseurl={repo.url}", "enabled=1",
                 f"gpgcheck={1 if pkg_check else 0}", f"repo_gpgcheck={1 if repo_check else 0}"]
        if repo.priority is not None:
            lines.append(f"priority={repo.priority}")
        if keys and (repo_check or pkg_check):
            lines.append("gpgkey=" + " ".join("file://" + k for k in keys))
        if not for_image:
            lines.append("skip_if_unavailable=False")
            if self.tls_bundle and repo.url.startswith("https://"):
                lines.append(f"sslcacert={self.tls_bundle}")
            if repo.username:
                lines.append(f"username={repo.username}")
                if repo.password:
                    lines.append(f"password={repo.password}")
                    self.runner.add_redaction(repo.password)
        return "\n".join(lines) + "\n"

    def write_build_repo(self, repo: Repo, gpg: Tuple[bool, bool]) -> None:
        path = os.path.join(self.reposd, f"{repo.alias}.repo")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(self._repo_text(repo, gpg, False, self.keys))

    def copy_keys_into_image(self) -> List[str]:
        directory = makedirs_in_root(self.root, "/etc/pki/rpm-gpg")
        inside = []
        for number, key in enumerate(self.keys, start=1):
            name = f"RPM-GPG-KEY-ims-{number}-{re.sub(r'[^A-Za-z0-9_.-]', '_', os.path.basename(key))}"
            with open(key, "rb") as f:
                atomic_write(os.path.join(directory, name), f.read(), 0o644)
            inside.append(f"/etc/pki/rpm-gpg/{name}")
        return inside

    def image_repo_text(self, repo: Repo, gpg: Tuple[bool, bool], keys_in_image: List[str]) -> str:
        return self._repo_text(repo, gpg, True, keys_in_image)

    def refresh(self, repo: Repo) -> ToolResult:
        return self.run_tool(self.base_argv() + ["--repo", repo.alias, "makecache", "--refresh"])

    def install(self, names: List[str]) -> ToolResult:
        return self.run_tool(self.base_argv() + ["install", "--"] + names)

    def install_collections(self, names: List[str]) -> ToolResult:
        return self.run_tool(self.base_argv() + ["install", "--"] + [f"@{n}" for n in names])

    def remove(self, names: List[str]) -> ToolResult:
        return self.run_tool(self.base_argv() + ["remove", "--"] + names)

    def read_install_sources(self) -> Dict[Nevra, str]:
        return dnf_install_sources(self.root, self.tmp)

    def missing_packages(self, lines: List[str], returncode: int, names: List[str]) -> List[str]:
        return unique_matches(lines, r"No match for argument: (.+)$")

    def conflict_problems(self, lines: List[str]) -> List[str]:
        return [l.strip() for l in lines if re.match(r"\s*Problem( \d+)?:", l)]

    collection_missing = r"Module or Group '(.+?)' (?:is not available|does not exist)"
    collection_reason = " (no comps group of that id)"

    def clean_caches(self) -> None:
        cache = resolve_in_root(self.root, "/var/cache/dnf", follow_last=False)
        if os.path.isdir(cache) and not os.path.islink(cache):
            for entry in os.listdir(cache):
                remove_tree(os.path.join(cache, entry))


# ============================================================================================
# Plugin glue


def cleanup_run(ctx: Context) -> Dict[str, Any]:
    """The cleanup verb: unmounts what a crashed or cancelled run left mounted (idempotent)."""
    from ims_rootfs import release_recorded_mounts
    state = ctx.workspace.get("state")
    released, failed = release_recorded_mounts(state) if state and os.path.isdir(state) else ([], [])
    for point in released:
        ctx.log("info", f"unmounted {point}")
    if failed:
        raise PluginError("build-root.cleanup_failed", "environment", f"cannot unmount {', '.join(failed)}",
                          {"mounts": failed})
    if not released:
        ctx.log("info", "nothing to clean up")
    return {"outputs": {}, "metadata": {"unmounted": released}, "facts": {}}

