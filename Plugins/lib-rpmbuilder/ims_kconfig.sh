# shellcheck shell=sh
# ims_kconfig.sh: the function library a KIWI description's config.sh and images.sh source as
# /.kconfig ("test -f /.kconfig && . /.kconfig"). The ims native builders (builder-zypper,
# builder-dnf) copy this file to <image root>/.kconfig before they run the scripts in a chroot of
# the image and remove it afterwards, as kiwi's own image types do.
#
# Written for ims from kiwi's DOCUMENTATION of what each function does (the "Functions and
# Variables Provided by KIWI" section of kiwi's user-defined scripts chapter, the older
# "Common Functions" lists for config.sh and images.sh, and the KIWI::config.sh(1) and
# KIWI::images.sh(1) manual pages). It is not kiwi's functions.sh and shares no code with it.
#
# Portability: POSIX sh plus "local" (bash, dash, busybox ash). No arrays, no [[ ]], no bashisms;
# external tools are used only where a function needs them (ln, rm, mkdir, mount, rpm,
# systemctl, ...) and their absence is reported. Safe to source under "set -euo pipefail": every
# expected failure is tested, unset variables are read as ${var:-}. Sourcing defines functions
# only (no output, no changes). Internal helpers are named _kc_*. Commands are looked up on $PATH
# by the library itself (_kc_path), not with "command -v", and rpm is run by its path and checked
# with "rpm --version": a busybox sh runs its own rpm applet (which has no database) for the bare
# name "rpm", and reports applets it cannot run as found.
#
# Errors: a function that cannot do its job prints "<function>: <why>" on stderr and returns
# non-zero; nothing fails silently. A function that has nothing to do (disable a service that
# is not installed, strip a directory that does not exist) says so on stderr and returns 0.
#
# ----------------------------------------------------------------------------------------------
# Functions (kiwi's name and arguments; what ims does; deviations from kiwi's documentation)
#
# Services. A "service" is a systemd unit name ("sshd", "sshd.service", "foo.socket",
# "foo.mount"; without a suffix .service then .mount is looked up) or a SysV init script
# /etc/init.d/<name>. Unit directories: /etc/systemd/system, /run/systemd/system,
# /usr/local/lib/systemd/system, /usr/lib/systemd/system, /lib/systemd/system.
#   baseInsertService NAME     enable: "systemctl enable" (offline, in the chroot) when the image
#                              has systemctl; otherwise the same symlinks systemctl would make,
#                              from the unit's [Install] section (WantedBy= -> <t>.wants/,
#                              RequiredBy= -> <t>.requires/, Alias=, Also=). SysV script only:
#                              systemctl, chkconfig, insserv or update-rc.d, whichever exists.
#                              Unknown service: error, returns 1 (kiwi's docs do not say).
#   baseRemoveService NAME     disable: "systemctl disable", or remove those symlinks (every
#                              <t>.wants/<unit>, <t>.requires/<unit> and Alias= link in
#                              /etc/systemd/system). Unknown service: a note, returns 0.
#   baseService NAME on|off    baseInsertService (on) or baseRemoveService (off).
#   suseInsertService NAME     = baseInsertService (kept for compatibility, as kiwi documents).
#   suseRemoveService NAME     = baseRemoveService.
#   suseService NAME on|off    = baseService.
#   suseActivateDefaultServices  enables "network" and "cron" (kiwi's documented list for
#                              systemd images); a missing one is reported, not fatal.
#                              Deviation: the long SysV list of old kiwi versions is not used.
#   suseActivateServices       enables every executable script in /etc/init.d (old kiwi docs).
#   suseServiceDefaultOn       old SysV variant of suseActivateDefaultServices: enables the
#                              services of kiwi's documented list that exist; missing ones skipped.
#   suseCloneRunlevel N        SysV only: copies the /etc/init.d/rc3.d links to rcN.d. With
#                              systemd there are no runlevel directories: a note, returns 0.
#   baseSystemdServiceInstalled NAME   prints the path of the first unit file (or .mount) found.
#   baseSysVServiceInstalled NAME      prints NAME when /etc/init.d/NAME exists.
#   baseSystemdCall NAME ARGS...       runs "systemctl ARGS UNIT" when the unit, mount or SysV
#                              script exists; error (returns 1) when it does not or there is no
#                              systemctl.
#   baseSetRunlevel N|TARGET   the default boot target: 1/s/S -> rescue.target,
#                              2/3/4 -> multi-user.target, 5 -> graphical.target (systemd's
#                              runlevelN.target mapping), or a target name ("multi-user.target").
#                              Writes /etc/systemd/system/default.target -> the target's unit
#                              file ("systemctl set-default" when systemctl exists). Image
#                              without systemd units but with /etc/inittab: sets initdefault.
#                              Deviation: 0 and 6 (poweroff/reboot at every boot) are refused;
#                              a target name is an ims extension. Unknown target: error.
#   baseDisableCtrlAltDel      masks ctrl-alt-del.target (systemd) and comments out the
#                              ctrlaltdel line of /etc/inittab when there is one.
#
# Product, keys, packages
#   suseSetupProduct           links /etc/products.d/baseproduct (relative link, as SUSE's
#                              release packages do) to the product named by the first line of
#                              /etc/SuSE-brand, else by ID= of /etc/os-release (whole ID, then
#                              each "-" part; case-insensitive <name>.prod), else the newest
#                              .prod file in /etc/products.d. No .prod file: error.
#   suseImportBuildKey         imports the build keys shipped in the image into its rpm
#                              database: every /usr/lib/rpm/gnupg/keys/*.asc (gpg-pubkey-*.asc,
#                              suse-build-key's layout) with "rpm --import", and the keys of the
#                              legacy keyring /usr/lib/rpm/gnupg/pubring.gpg when gpg exists. Keys
#                              already in the database are skipped. No rpm, or a key rpm refuses:
#                              error. No keys at all: a note, returns 0.
#   baseStripRPM               removes the packages of $kiwi_delete (rpm -e --nodeps); like
#                              suseRemovePackagesMarkedForDeletion it skips packages that are not
#                              installed (deviation: kiwi's docs only say so for the suse variant).
#   suseRemovePackagesMarkedForDeletion  the same (checks each package is installed first).
#   baseGetPackagesForDeletion prints $kiwi_delete.
#   baseGetProfilesUsed        prints $kiwi_profiles.
#   suseRemoveYaST             not in kiwi's function documentation (the corpus calls it with the
#                              comment "Remove yast if not in use"). ims: unless the image uses
#                              YaST firstboot (/etc/YaST2/firstboot.xml) or autoyast
#                              (/var/lib/autoinstall/autoconf/autoconf.xml), removes the
#                              installed yast / yast2* packages with rpm -e --nodeps.
#   suseStripPackager [-a]     removes zypper/libzypp/smart packages and their databases and
#                              caches; with -a also rpm and the rpm database.
#   suseSetupProductInformation  needs zypper in the image: lists installed products with
#                              "zypper search -t product"; ims does not install "product specific
#                              packages" (refused with a message, returns 1).
#   suseConfig                 applies $kiwi_keytable (/etc/vconsole.conf KEYMAP=, and KEYTABLE=
#                              of /etc/sysconfig/keyboard when it exists), $kiwi_language
#                              (/etc/locale.conf LANG= from the first entry, RC_LANG= of
#                              /etc/sysconfig/language when it exists), $kiwi_timezone
#                              (/etc/localtime -> /usr/share/zoneinfo/<tz>, TIMEZONE= of
#                              /etc/sysconfig/clock when it exists), $kiwi_hwclock (utc|localtime,
#                              /etc/adjtime), then runs SuSEconfig when the image still has it.
#                              Each value that is not set is skipped; a timezone the image has
#                              no zoneinfo for is an error.
#   baseUpdateSysConfig FILE VAR VALUE   sets VAR="VALUE" in the sysconfig file (replacing the
#                              line, else appending it). Missing file: error.
#   baseSetupUserPermissions   chown -R <user>:<primary group> of each /etc/passwd user's home.
#                              Deviation: only homes under /home/ and /root are touched (a
#                              system user's "home" such as /bin or / is never chowned).
#   baseSetupBuildDay          not in kiwi's function documentation (the corpus calls it in a
#                              boot image's images.sh, "setup build day"). ims writes /build_day
#                              with "build_day=YYYYMMDD" (UTC; SOURCE_DATE_EPOCH when set).
#
# Stripping (images.sh)
#   baseStripAndKeep KEEP...   reads file paths from stdin and removes each one whose base name,
#                              or base name up to the first ".", is not in KEEP.
#   baseStripDocs KEEP...      removes /usr/share/doc (and /usr/share/doc/packages) entries except
#                              those named in KEEP.
#   baseStripMans KEEP...      removes manual pages except those named in KEEP ("more", "less").
#   baseStripInfos KEEP...     removes info files except those named in KEEP.
#   baseStripLocales KEEP...   removes compiled locales (/usr/lib/locale/<name>, and entries of
#                              locale-archive via localedef when it exists) except those named
#                              in KEEP ("en_US" keeps en_US, en_US.utf8, en_US.UTF-8 ...).
#                              Deviation: C, C.* and POSIX are always kept.
#   baseStripTranslations KEEP...  removes message catalogues (/usr/share/locale/<lang>/LC_MESSAGES
#                              /*.mo) of every language except those in KEEP ("de" keeps de,
#                              de_DE, de_AT ...; "de_DE" also keeps de).
#   baseStripTools "DIRS" "TOOLS"   removes every file in the directories DIRS except the tools
#                              named in TOOLS (both space-separated lists).
#   baseStripUnusedLibs        removes shared libraries in /lib*, /usr/lib* (top level only)
#                              that no program in the bin directories links against (ldd needed).
#                              Deviation: the dynamic loader, libc, and dlopen()ed libraries
#                              (libnss_*, libpam*, libresolv, libgcc_s) are always kept.
#   suseStripKernel            removes the kernel modules (/lib/modules/*/kernel, /usr/lib/modules)
#                              not matched by $kiwi_drivers (comma-separated, globs relative to
#                              kernel/, e.g. "drivers/net/*,fs/squashfs/*"); runs depmod when it
#                              exists. Deviation: with $kiwi_drivers empty it refuses (error)
#                              instead of removing every module.
#   suseStripInitrd            kiwi's docs: removes tools and libraries not needed to boot a
#                              legacy kiwi boot image. ims does not reproduce kiwi's tool list:
#                              it removes documentation, manual and info pages, translations,
#                              locales other than C/POSIX, /usr/include, /usr/src and static
#                              libraries (*.a, *.la), and says so.
#   suseGFXBoot, baseSetupOEMPartition, baseSetupBoot, baseSetupInPlaceSVNRepository
#                              legacy kiwi boot-image features: refused with a message (return 1).
#   baseSetupInPlaceGITRepository / baseSetupPlainTextGITRepository   "git init" at / with the
#                              (plain-text) files committed; pseudo file systems ignored. Needs git.
#   baseSetupBusyBox [-f] [APPLETS...]   links every path of busybox.links that does not exist to
#                              busybox; with -f the given paths are linked even if they exist.
#   baseVagrantSetup           user vagrant in /etc/sudoers.d/vagrant (NOPASSWD), /vagrant,
#                              "UseDNS no" for sshd, sshd enabled. Deviation: ims does not ship
#                              the insecure vagrant key; without /home/vagrant/.ssh/authorized_keys
#                              (put it in the overlay) it reports that and returns 1.
#
# Mounts
#   baseMount                  mounts proc on /proc, sysfs on /sys and devpts on /dev/pts (each
#                              one only when it is not mounted yet). Error if mount fails.
#   baseCleanMount             unmounts /dev/pts, /sys and /proc when mounted (lazily if busy).
#                              (ims also removes whatever a script leaves mounted.)
#
# Helpers
#   Debug MESSAGE              prints "[DEBUG] MESSAGE" when $DEBUG is 1.
#   Echo ARGS...               echo ARGS (to the script's output, which ims logs).
#   Rm FILES...                rm -f FILES, announcing each file.
#   Rpm ARGS...                rpm ARGS, announcing the command line.
# ----------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------- internal helpers

_kc_err() {
    # _kc_err FUNCTION MESSAGE...: the one way this library reports a problem.
    _kc_fn=$1
    shift
    echo "$_kc_fn: $*" >&2
}

_kc_path() {
    # _kc_path COMMAND: prints the path of the executable file COMMAND on $PATH, or fails.
    # ("command -v" is not used: busybox sh reports its applets there even when running the name
    # fails, and runs its applet for a bare name such as "rpm" even when /usr/bin/rpm is the real
    # program; the library calls rpm by the path this prints.)
    local dir IFS
    case $1 in
        /*) if [ -x "$1" ] && [ ! -d "$1" ]; then echo "$1"; return 0; fi; return 1 ;;
    esac
    IFS=:
    for dir in $PATH; do
        [ -n "$dir" ] || dir=.
        if [ -x "$dir/$1" ] && [ ! -d "$dir/$1" ]; then
            echo "$dir/$1"
            return 0
        fi
    done
    return 1
}

_kc_have() {
    _kc_path "$1" >/dev/null
}

_kc_have_rpm() {
    # _kc_have_rpm FN: is there a real rpm (not busybox's applet, which has no database)? Sets
    # _kc_rpm to its path.
    local version
    if ! _kc_rpm=$(_kc_path rpm); then
        _kc_err "$1" "the image has no rpm"
        return 1
    fi
    version=$("$_kc_rpm" --version 2>/dev/null) || version=
    case $version in
        RPM\ version*|rpm\ *) return 0 ;;
    esac
    _kc_err "$1" "the image's rpm ($_kc_rpm) is not RPM (rpm --version says '$version'; busybox's rpm applet?)"
    return 1
}

_kc_unit_dirs="/etc/systemd/system /run/systemd/system /usr/local/lib/systemd/system /usr/lib/systemd/system /lib/systemd/system"

_kc_unit_file() {
    # _kc_unit_file UNIT: prints the path of the unit file UNIT (exact file name) or fails.
    # Instances (foo@bar.service) are looked up as their template (foo@.service).
    local unit dir template
    unit=$1
    template=
    case $unit in
        *@?*.*) template="${unit%%@*}@.${unit##*.}" ;;
    esac
    for dir in $_kc_unit_dirs; do
        if [ -e "$dir/$unit" ] || [ -L "$dir/$unit" ]; then
            echo "$dir/$unit"
            return 0
        fi
        if [ -n "$template" ] && [ -e "$dir/$template" ]; then
            echo "$dir/$template"
            return 0
        fi
    done
    return 1
}

_kc_unit_name() {
    # _kc_unit_name NAME: prints the unit name NAME stands for (NAME itself when it has a unit
    # suffix, else NAME.service or NAME.mount, whichever exists) or fails.
    local name suffix
    name=$1
    case $name in
        *.service|*.socket|*.target|*.mount|*.automount|*.timer|*.path|*.swap|*.slice|*.scope|*.device)
            if _kc_unit_file "$name" >/dev/null; then
                echo "$name"
                return 0
            fi
            return 1 ;;
    esac
    for suffix in service mount; do
        if _kc_unit_file "$name.$suffix" >/dev/null; then
            echo "$name.$suffix"
            return 0
        fi
    done
    return 1
}

_kc_install_values() {
    # _kc_install_values FILE KEY: prints the values of KEY= in the [Install] section of FILE,
    # one a line (space-separated lists split; later "KEY=" with an empty value resets).
    local file key line section values value
    file=$1
    key=$2
    section=
    values=
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
            \[*\]*) section=$line; continue ;;
        esac
        [ "$section" = "[Install]" ] || continue
        case $line in
            "$key="*)
                value=${line#"$key="}
                if [ -z "$value" ]; then
                    values=
                else
                    values="$values $value"
                fi ;;
        esac
    done < "$file"
    for value in $values; do
        echo "$value"
    done
}

_kc_has_install_section() {
    local file line
    file=$1
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
            "[Install]"*) return 0 ;;
        esac
    done < "$file"
    return 1
}

_kc_links_enable() {
    # _kc_links_enable FN UNIT: what "systemctl enable UNIT" does, without systemctl.
    local fn unit path target etc also done
    fn=$1
    unit=$2
    etc=/etc/systemd/system
    path=$(_kc_unit_file "$unit") || { _kc_err "$fn" "no unit file for $unit"; return 1; }
    # a unit file in /etc/systemd/system that is itself a link: link to what it points at
    if [ -L "$path" ] && [ "${path%/*}" = "$etc" ]; then
        path=$(readlink "$path")
    fi
    if ! _kc_has_install_section "$path"; then
        _kc_err "$fn" "$unit has no [Install] section (a static unit): nothing to enable"
        return 0
    fi
    mkdir -p "$etc" || { _kc_err "$fn" "cannot create $etc"; return 1; }
    for target in $(_kc_install_values "$path" WantedBy); do
        mkdir -p "$etc/$target.wants" && ln -sfn "$path" "$etc/$target.wants/$unit" \
            || { _kc_err "$fn" "cannot link $etc/$target.wants/$unit"; return 1; }
    done
    for target in $(_kc_install_values "$path" RequiredBy); do
        mkdir -p "$etc/$target.requires" && ln -sfn "$path" "$etc/$target.requires/$unit" \
            || { _kc_err "$fn" "cannot link $etc/$target.requires/$unit"; return 1; }
    done
    for target in $(_kc_install_values "$path" Alias); do
        ln -sfn "$path" "$etc/$target" || { _kc_err "$fn" "cannot link $etc/$target"; return 1; }
    done
    done=" $unit "
    for also in $(_kc_install_values "$path" Also); do
        case $done in *" $also "*) continue ;; esac
        done="$done$also "
        _kc_links_enable "$fn" "$also" || return 1
    done
    return 0
}

_kc_links_disable() {
    # _kc_links_disable FN UNIT: what "systemctl disable UNIT" does, without systemctl.
    local fn unit path link etc alias also
    fn=$1
    unit=$2
    etc=/etc/systemd/system
    for link in "$etc"/*.wants/"$unit" "$etc"/*.requires/"$unit"; do
        if [ -L "$link" ]; then
            rm -f "$link" || { _kc_err "$fn" "cannot remove $link"; return 1; }
            rmdir "${link%/*}" 2>/dev/null || :
        fi
    done
    if path=$(_kc_unit_file "$unit"); then
        for alias in $(_kc_install_values "$path" Alias); do
            if [ -L "$etc/$alias" ]; then
                rm -f "$etc/$alias" || { _kc_err "$fn" "cannot remove $etc/$alias"; return 1; }
            fi
        done
        for also in $(_kc_install_values "$path" Also); do
            [ "$also" = "$unit" ] && continue
            _kc_links_disable "$fn" "$also" || return 1
        done
    fi
    return 0
}

_kc_sysv_call() {
    # _kc_sysv_call FN NAME on|off: a SysV init script through whatever tool the image has.
    local fn name state
    fn=$1
    name=$2
    state=$3
    local rc
    rc=0
    if _kc_have systemctl; then
        if [ "$state" = on ]; then systemctl enable "$name" || rc=$?; else systemctl disable "$name" || rc=$?; fi
    elif _kc_have chkconfig; then
        chkconfig "$name" "$state" || rc=$?
    elif _kc_have insserv; then
        if [ "$state" = on ]; then insserv "$name" || rc=$?; else insserv -r "$name" || rc=$?; fi
    elif _kc_have update-rc.d; then
        if [ "$state" = on ]; then update-rc.d "$name" defaults || rc=$?; else update-rc.d -f "$name" remove || rc=$?; fi
    else
        _kc_err "$fn" "/etc/init.d/$name is a SysV init script and the image has none of systemctl, chkconfig, insserv, update-rc.d"
        return 1
    fi
    [ $rc -eq 0 ] || _kc_err "$fn" "switching SysV service $name $state failed (exit $rc)"
    return $rc
}

_kc_service() {
    # _kc_service FN NAME on|off
    local fn name state unit rc
    fn=$1
    name=${2:-}
    state=$3
    if [ -z "$name" ]; then
        _kc_err "$fn" "no service name given"
        return 1
    fi
    if unit=$(_kc_unit_name "$name"); then
        rc=0
        if _kc_have systemctl; then
            if [ "$state" = on ]; then
                systemctl enable "$unit" || rc=$?
            else
                systemctl disable "$unit" || rc=$?
            fi
            [ $rc -eq 0 ] || _kc_err "$fn" "systemctl $([ "$state" = on ] && echo enable || echo disable) $unit failed (exit $rc)"
            return $rc
        fi
        if [ "$state" = on ]; then
            _kc_links_enable "$fn" "$unit" || rc=$?
        else
            _kc_links_disable "$fn" "$unit" || rc=$?
        fi
        return $rc
    fi
    if [ -x "/etc/init.d/$name" ]; then
        rc=0
        _kc_sysv_call "$fn" "$name" "$state" || rc=$?
        return $rc
    fi
    if [ "$state" = on ]; then
        _kc_err "$fn" "no systemd unit or SysV init script named '$name' in the image; not enabled"
        return 1
    fi
    _kc_err "$fn" "no systemd unit or SysV init script named '$name' in the image; nothing to disable"
    return 0
}

_kc_mounted() {
    # _kc_mounted PATH: is PATH a mount point? (/proc/self/mountinfo, else a look at the tree)
    local p _a _b _c _d point _rest
    p=$1
    if [ -r /proc/self/mountinfo ]; then
        while read -r _a _b _c _d point _rest; do
            [ "$point" = "$p" ] && return 0
        done < /proc/self/mountinfo
        return 1
    fi
    case $p in
        /proc) [ -e /proc/self ] ;;
        /sys) [ -d /sys/kernel ] ;;
        /dev/pts) [ -e /dev/pts/ptmx ] ;;
        *) return 1 ;;
    esac
}

_kc_remove_unless_kept() {
    # _kc_remove_unless_kept PATH KEEP...: removes PATH unless its base name (or the base name up
    # to the first ".") is one of KEEP. Used by baseStripAndKeep.
    local path base short keep
    path=$1
    shift
    base=${path##*/}
    short=${base%%.*}
    for keep in "$@"; do
        if [ "$base" = "$keep" ] || [ "$short" = "$keep" ]; then
            return 0
        fi
    done
    rm -rf "$path"
}

# ---------------------------------------------------------------------------- helpers (kiwi)

Debug() {
    if [ "${DEBUG:-0}" = 1 ]; then
        echo "[DEBUG] $*"
    fi
    return 0
}

Echo() {
    echo "$@"
}

Rm() {
    local file
    for file in "$@"; do
        echo "Removing: $file"
        rm -f "$file" || { _kc_err Rm "cannot remove $file"; return 1; }
    done
    return 0
}

Rpm() {
    _kc_have_rpm Rpm || return 1
    echo "rpm $*"
    "$_kc_rpm" "$@"
}

# ---------------------------------------------------------------------------- services

baseInsertService() {
    _kc_service baseInsertService "${1:-}" on
}

baseRemoveService() {
    _kc_service baseRemoveService "${1:-}" off
}

baseService() {
    case ${2:-} in
        on) _kc_service baseService "${1:-}" on ;;
        off) _kc_service baseService "${1:-}" off ;;
        *) _kc_err baseService "usage: baseService SERVICE on|off (got '${2:-}')"; return 1 ;;
    esac
}

suseInsertService() {
    _kc_service suseInsertService "${1:-}" on
}

suseRemoveService() {
    _kc_service suseRemoveService "${1:-}" off
}

suseService() {
    case ${2:-} in
        on) _kc_service suseService "${1:-}" on ;;
        off) _kc_service suseService "${1:-}" off ;;
        *) _kc_err suseService "usage: suseService SERVICE on|off (got '${2:-}')"; return 1 ;;
    esac
}

suseActivateDefaultServices() {
    local service
    for service in network cron; do
        if _kc_unit_name "$service" >/dev/null || [ -x "/etc/init.d/$service" ]; then
            echo "Activating service: $service"
            _kc_service suseActivateDefaultServices "$service" on || return 1
        else
            _kc_err suseActivateDefaultServices "default service '$service' is not installed; skipped"
        fi
    done
    return 0
}

suseActivateServices() {
    local script
    if [ ! -d /etc/init.d ]; then
        _kc_err suseActivateServices "no /etc/init.d in the image; nothing to activate"
        return 0
    fi
    for script in /etc/init.d/*; do
        [ -f "$script" ] && [ -x "$script" ] || continue
        case ${script##*/} in
            rc|rcS|skeleton|functions|halt|reboot|README*|*.*) continue ;;
        esac
        _kc_service suseActivateServices "${script##*/}" on || return 1
    done
    return 0
}

suseServiceDefaultOn() {
    local service
    for service in boot.rootfsck boot.cleanup boot.localfs boot.localnet boot.clock policykitd \
                   dbus consolekit haldaemon network atd syslog cron kbd; do
        if _kc_unit_name "$service" >/dev/null || [ -x "/etc/init.d/$service" ]; then
            _kc_service suseServiceDefaultOn "$service" on || return 1
        fi
    done
    return 0
}

suseCloneRunlevel() {
    local level link dir
    level=${1:-}
    case $level in
        [0-6]) ;;
        *) _kc_err suseCloneRunlevel "usage: suseCloneRunlevel RUNLEVEL (0-6), got '$level'"; return 1 ;;
    esac
    if [ ! -d /etc/init.d/rc3.d ] && [ ! -d /etc/rc3.d ]; then
        _kc_err suseCloneRunlevel "no SysV runlevel directories (a systemd image has targets, not runlevels); nothing to clone"
        return 0
    fi
    for dir in /etc/init.d /etc; do
        [ -d "$dir/rc3.d" ] || continue
        mkdir -p "$dir/rc$level.d" || { _kc_err suseCloneRunlevel "cannot create $dir/rc$level.d"; return 1; }
        for link in "$dir/rc3.d"/*; do
            [ -L "$link" ] || continue
            ln -sfn "$(readlink "$link")" "$dir/rc$level.d/${link##*/}" \
                || { _kc_err suseCloneRunlevel "cannot link $dir/rc$level.d/${link##*/}"; return 1; }
        done
    done
    return 0
}

baseSystemdServiceInstalled() {
    local unit
    if unit=$(_kc_unit_name "${1:-}"); then
        _kc_unit_file "$unit"
        return 0
    fi
    return 1
}

baseSysVServiceInstalled() {
    if [ -n "${1:-}" ] && [ -x "/etc/init.d/$1" ]; then
        echo "$1"
    fi
    return 0
}

baseSystemdCall() {
    local name unit
    name=${1:-}
    if [ -z "$name" ]; then
        _kc_err baseSystemdCall "usage: baseSystemdCall SERVICE ARGS..."
        return 1
    fi
    shift
    if ! _kc_have systemctl; then
        _kc_err baseSystemdCall "the image has no systemctl; not calling 'systemctl $* $name'"
        return 1
    fi
    local rc
    rc=0
    if unit=$(_kc_unit_name "$name"); then
        systemctl "$@" "$unit" || rc=$?
        [ $rc -eq 0 ] || _kc_err baseSystemdCall "systemctl $* $unit failed (exit $rc)"
        return $rc
    fi
    if [ -x "/etc/init.d/$name" ]; then
        systemctl "$@" "$name" || rc=$?
        [ $rc -eq 0 ] || _kc_err baseSystemdCall "systemctl $* $name failed (exit $rc)"
        return $rc
    fi
    _kc_err baseSystemdCall "no systemd unit, mount or SysV init script named '$name'"
    return 1
}

baseSetRunlevel() {
    local value target path
    value=${1:-}
    case $value in
        1|s|S) target=rescue.target ;;
        2|3|4) target=multi-user.target ;;
        5) target=graphical.target ;;
        0|6) _kc_err baseSetRunlevel "runlevel $value would power off or reboot the image at every boot; refused"
             return 1 ;;
        *.target) target=$value ;;
        *) _kc_err baseSetRunlevel "usage: baseSetRunlevel 1-5|NAME.target (got '$value')"; return 1 ;;
    esac
    if path=$(_kc_unit_file "$target"); then
        if _kc_have systemctl; then
            systemctl set-default "$target" || { _kc_err baseSetRunlevel "systemctl set-default $target failed"; return 1; }
            return 0
        fi
        mkdir -p /etc/systemd/system && ln -sfn "$path" /etc/systemd/system/default.target \
            || { _kc_err baseSetRunlevel "cannot link /etc/systemd/system/default.target"; return 1; }
        return 0
    fi
    if [ -f /etc/inittab ] && grep -q '^[^#]*:initdefault:' /etc/inittab; then
        case $value in
            [1-5]|s|S) ;;
            *) _kc_err baseSetRunlevel "the image has /etc/inittab but no systemd unit $target"; return 1 ;;
        esac
        sed -i "s/^\([^#:]*\):[0-9sS]*:initdefault:/\1:$value:initdefault:/" /etc/inittab \
            || { _kc_err baseSetRunlevel "cannot edit /etc/inittab"; return 1; }
        return 0
    fi
    _kc_err baseSetRunlevel "the image has no systemd unit $target (looked in $_kc_unit_dirs) and no /etc/inittab; default target not set"
    return 1
}

baseDisableCtrlAltDel() {
    local done
    done=
    if [ -d /etc/systemd ] || _kc_unit_file ctrl-alt-del.target >/dev/null; then
        mkdir -p /etc/systemd/system && ln -sfn /dev/null /etc/systemd/system/ctrl-alt-del.target \
            || { _kc_err baseDisableCtrlAltDel "cannot mask ctrl-alt-del.target"; return 1; }
        done=1
    fi
    if [ -f /etc/inittab ]; then
        sed -i 's/^\([^#].*:ctrlaltdel:.*\)$/#\1/' /etc/inittab \
            || { _kc_err baseDisableCtrlAltDel "cannot edit /etc/inittab"; return 1; }
        done=1
    fi
    if [ -z "$done" ]; then
        _kc_err baseDisableCtrlAltDel "the image has neither systemd nor /etc/inittab; nothing to disable"
    fi
    return 0
}

# ---------------------------------------------------------------------------- product, keys

_kc_prod_ci() {
    # _kc_prod_ci NAME: prints the .prod file of /etc/products.d named NAME (case-insensitive).
    local want file base
    [ -n "${1:-}" ] || return 1
    want=$(echo "$1" | tr '[:upper:]' '[:lower:]')
    for file in /etc/products.d/*.prod; do
        [ -f "$file" ] || continue
        base=${file##*/}
        base=$(echo "${base%.prod}" | tr '[:upper:]' '[:lower:]')
        if [ "$base" = "$want" ]; then
            echo "${file##*/}"
            return 0
        fi
    done
    return 1
}

suseSetupProduct() {
    local prod brand id part line count newest
    if [ ! -d /etc/products.d ]; then
        _kc_err suseSetupProduct "the image has no /etc/products.d (no SUSE release package installed); baseproduct not set"
        return 1
    fi
    prod=
    if [ -r /etc/SuSE-brand ]; then
        IFS= read -r brand < /etc/SuSE-brand || :
        prod=$(_kc_prod_ci "$brand") || prod=
    fi
    if [ -z "$prod" ] && [ -r /etc/os-release ]; then
        id=
        while IFS= read -r line || [ -n "$line" ]; do
            case $line in
                ID=*) id=${line#ID=}; id=${id#\"}; id=${id%\"}; id=${id#\'}; id=${id%\'} ;;
            esac
        done < /etc/os-release
        if [ -n "$id" ]; then
            prod=$(_kc_prod_ci "$id") || prod=
            if [ -z "$prod" ]; then
                for part in $(echo "$id" | tr '-' ' '); do
                    if prod=$(_kc_prod_ci "$part"); then break; fi
                    prod=
                done
            fi
        fi
    fi
    if [ -z "$prod" ]; then
        # the newest .prod file
        count=0
        newest=
        for line in /etc/products.d/*.prod; do
            [ -f "$line" ] || continue
            count=$((count + 1))
            if [ -z "$newest" ] || [ "$line" -nt "$newest" ]; then
                newest=$line
            fi
        done
        if [ $count -eq 0 ]; then
            _kc_err suseSetupProduct "no .prod file in /etc/products.d; baseproduct not set"
            return 1
        fi
        prod=${newest##*/}
    fi
    ln -sfn "$prod" /etc/products.d/baseproduct \
        || { _kc_err suseSetupProduct "cannot link /etc/products.d/baseproduct"; return 1; }
    echo "suseSetupProduct: /etc/products.d/baseproduct -> $prod"
    return 0
}

_kc_rpm_has_key() {
    # _kc_rpm_has_key ASC: is the key of armored file ASC in the rpm database already?
    # (gpg-pubkey-<id>-<date>.asc file names are what suse-build-key ships; other names are
    # always imported, rpm itself skips a key it has.)
    local base
    base=${1##*/}
    case $base in
        gpg-pubkey-*-*.asc)
            base=${base%.asc}
            "$_kc_rpm" -q "$base" >/dev/null 2>&1 ;;
        *) return 1 ;;
    esac
}

suseImportBuildKey() {
    local key dir found failed tmp
    dir=/usr/lib/rpm/gnupg/keys
    _kc_have_rpm suseImportBuildKey || return 1
    found=0
    failed=0
    for key in "$dir"/*.asc; do
        [ -f "$key" ] || continue
        found=$((found + 1))
        if _kc_rpm_has_key "$key"; then
            echo "suseImportBuildKey: ${key##*/} is already in the rpm database"
            continue
        fi
        if "$_kc_rpm" --import "$key"; then
            echo "suseImportBuildKey: imported ${key##*/}"
        else
            _kc_err suseImportBuildKey "rpm --import $key failed"
            failed=1
        fi
    done
    if [ -f /usr/lib/rpm/gnupg/pubring.gpg ]; then
        found=$((found + 1))
        if _kc_have gpg; then
            tmp=$(mktemp -d /tmp/kconfig-keys.XXXXXX) || { _kc_err suseImportBuildKey "cannot make a temporary directory"; return 1; }
            if gpg --homedir "$tmp" --batch --no-options --no-default-keyring \
                   --keyring /usr/lib/rpm/gnupg/pubring.gpg --armor --export > "$tmp/keys.asc" 2>/dev/null \
               && [ -s "$tmp/keys.asc" ] && "$_kc_rpm" --import "$tmp/keys.asc"; then
                echo "suseImportBuildKey: imported the keys of /usr/lib/rpm/gnupg/pubring.gpg"
            else
                _kc_err suseImportBuildKey "cannot import the keys of /usr/lib/rpm/gnupg/pubring.gpg"
                failed=1
            fi
            rm -rf "$tmp"
        else
            _kc_err suseImportBuildKey "/usr/lib/rpm/gnupg/pubring.gpg needs gpg, which the image does not have; its keys are not imported"
            failed=1
        fi
    fi
    if [ $found -eq 0 ]; then
        _kc_err suseImportBuildKey "no build keys in $dir (*.asc) or /usr/lib/rpm/gnupg/pubring.gpg; nothing imported"
    fi
    return $failed
}

_kc_rpm_remove_installed() {
    # _kc_rpm_remove_installed FN NAME...: rpm -e --nodeps the installed ones among NAME...
    local fn name present
    fn=$1
    shift
    _kc_have_rpm "$fn" || return 1
    present=
    for name in "$@"; do
        if "$_kc_rpm" -q --quiet "$name" 2>/dev/null; then
            present="$present $name"
        else
            _kc_err "$fn" "package '$name' is not installed; skipped"
        fi
    done
    [ -n "$present" ] || return 0
    # shellcheck disable=SC2086
    "$_kc_rpm" -e --nodeps $present || { _kc_err "$fn" "rpm -e --nodeps$present failed"; return 1; }
    return 0
}

baseStripRPM() {
    # shellcheck disable=SC2086
    _kc_rpm_remove_installed baseStripRPM $(echo "${kiwi_delete:-}" | tr ',' ' ')
}

suseRemovePackagesMarkedForDeletion() {
    # shellcheck disable=SC2086
    _kc_rpm_remove_installed suseRemovePackagesMarkedForDeletion $(echo "${kiwi_delete:-}" | tr ',' ' ')
}

baseGetPackagesForDeletion() {
    echo "${kiwi_delete:-}"
}

baseGetProfilesUsed() {
    echo "${kiwi_profiles:-}"
}

suseRemoveYaST() {
    local packages
    if [ -e /etc/YaST2/firstboot.xml ]; then
        echo "suseRemoveYaST: YaST firstboot is configured (/etc/YaST2/firstboot.xml); YaST kept"
        return 0
    fi
    if [ -e /var/lib/autoinstall/autoconf/autoconf.xml ]; then
        echo "suseRemoveYaST: autoyast is configured; YaST kept"
        return 0
    fi
    _kc_have_rpm suseRemoveYaST || return 1
    packages=$("$_kc_rpm" -qa --qf '%{NAME}\n' 2>/dev/null | grep -E '^(yast|yast2|yast2-.*|autoyast2.*)$') || packages=
    if [ -z "$packages" ]; then
        echo "suseRemoveYaST: no YaST packages installed"
        return 0
    fi
    # shellcheck disable=SC2086
    "$_kc_rpm" -e --nodeps $packages || { _kc_err suseRemoveYaST "rpm -e --nodeps failed for: $(echo $packages)"; return 1; }
    return 0
}

suseStripPackager() {
    local all
    all=
    [ "${1:-}" != "-a" ] || all=1
    local names present name
    if _kc_have_rpm suseStripPackager 2>/dev/null; then
        names="zypper libzypp smart zypp-plugin-python"
        [ -z "$all" ] || names="$names rpm"
        present=
        for name in $names; do
            "$_kc_rpm" -q --quiet "$name" 2>/dev/null && present="$present $name"
        done
        if [ -n "$present" ]; then
            # shellcheck disable=SC2086
            "$_kc_rpm" -e --nodeps $present || { _kc_err suseStripPackager "rpm -e --nodeps$present failed"; return 1; }
        fi
    fi
    rm -rf /var/lib/zypp /var/cache/zypp /var/lib/smart /var/cache/smart /etc/zypp/repos.d/* 2>/dev/null || :
    if [ -n "$all" ]; then
        rm -rf /var/lib/rpm /usr/lib/sysimage/rpm 2>/dev/null || :
    fi
    return 0
}

suseSetupProductInformation() {
    if ! _kc_have zypper; then
        _kc_err suseSetupProductInformation "needs zypper, which the image does not have"
        return 1
    fi
    _kc_err suseSetupProductInformation "installing product specific packages at config.sh time is not supported by ims (no repository access in the script); add the packages to the description"
    return 1
}

_kc_set_var() {
    # _kc_set_var FILE VAR VALUE: VAR="VALUE" in a shell-style file (replace or append).
    local file var value line out found quoted
    file=$1
    var=$2
    value=$3
    quoted=$(printf '%s' "$value" | sed 's/[\\"$`]/\\&/g')
    out="$file.kconfig.$$"
    found=
    : > "$out" || return 1
    if [ -f "$file" ]; then
        while IFS= read -r line || [ -n "$line" ]; do
            case $line in
                "$var="*)
                    if [ -z "$found" ]; then
                        printf '%s="%s"\n' "$var" "$quoted" >> "$out"
                        found=1
                    fi ;;
                *) printf '%s\n' "$line" >> "$out" ;;
            esac
        done < "$file"
    fi
    [ -n "$found" ] || printf '%s="%s"\n' "$var" "$quoted" >> "$out"
    if [ -f "$file" ]; then
        chmod --reference="$file" "$out" 2>/dev/null || chmod 0644 "$out"
    else
        chmod 0644 "$out"
    fi
    mv -f "$out" "$file"
}

baseUpdateSysConfig() {
    local file var
    file=${1:-}
    var=${2:-}
    if [ -z "$file" ] || [ -z "$var" ] || [ $# -lt 3 ]; then
        _kc_err baseUpdateSysConfig "usage: baseUpdateSysConfig FILE VARIABLE VALUE"
        return 1
    fi
    if [ ! -f "$file" ]; then
        _kc_err baseUpdateSysConfig "$file does not exist in the image; $var not set"
        return 1
    fi
    _kc_set_var "$file" "$var" "$3" || { _kc_err baseUpdateSysConfig "cannot update $file"; return 1; }
    return 0
}

suseConfig() {
    local lang failed
    failed=0
    if [ -n "${kiwi_keytable:-}" ]; then
        _kc_set_var /etc/vconsole.conf KEYMAP "$kiwi_keytable" || { _kc_err suseConfig "cannot write /etc/vconsole.conf"; failed=1; }
        if [ -f /etc/sysconfig/keyboard ]; then
            _kc_set_var /etc/sysconfig/keyboard KEYTABLE "$kiwi_keytable" || failed=1
        fi
    fi
    if [ -n "${kiwi_language:-}" ]; then
        lang=${kiwi_language%%,*}
        case $lang in
            *.*|C|POSIX) ;;
            *) lang="$lang.UTF-8" ;;
        esac
        _kc_set_var /etc/locale.conf LANG "$lang" || { _kc_err suseConfig "cannot write /etc/locale.conf"; failed=1; }
        if [ -f /etc/sysconfig/language ]; then
            _kc_set_var /etc/sysconfig/language RC_LANG "$lang" || failed=1
        fi
    fi
    if [ -n "${kiwi_timezone:-}" ]; then
        if [ -e "/usr/share/zoneinfo/$kiwi_timezone" ]; then
            ln -sfn "/usr/share/zoneinfo/$kiwi_timezone" /etc/localtime || { _kc_err suseConfig "cannot link /etc/localtime"; failed=1; }
        else
            _kc_err suseConfig "no /usr/share/zoneinfo/$kiwi_timezone in the image (timezone data not installed?); /etc/localtime not set"
            failed=1
        fi
        if [ -f /etc/sysconfig/clock ]; then
            _kc_set_var /etc/sysconfig/clock TIMEZONE "$kiwi_timezone" || failed=1
        fi
    fi
    if [ -n "${kiwi_hwclock:-}" ]; then
        case $kiwi_hwclock in
            utc|UTC) printf '0.0 0 0.0\n0\nUTC\n' > /etc/adjtime || failed=1 ;;
            localtime|LOCAL|local) printf '0.0 0 0.0\n0\nLOCAL\n' > /etc/adjtime || failed=1 ;;
            *) _kc_err suseConfig "kiwi_hwclock '$kiwi_hwclock' is neither utc nor localtime"; failed=1 ;;
        esac
    fi
    if [ -x /sbin/SuSEconfig ]; then
        /sbin/SuSEconfig || { _kc_err suseConfig "SuSEconfig failed"; failed=1; }
    elif [ -x /usr/sbin/SuSEconfig ]; then
        /usr/sbin/SuSEconfig || { _kc_err suseConfig "SuSEconfig failed"; failed=1; }
    fi
    return $failed
}

baseSetupUserPermissions() {
    local name _pw uid gid _gecos home _shell
    if [ ! -r /etc/passwd ]; then
        _kc_err baseSetupUserPermissions "no /etc/passwd in the image"
        return 1
    fi
    while IFS=: read -r name _pw uid gid _gecos home _shell; do
        case $home in
            /home/?*|/root) ;;
            *) continue ;;
        esac
        [ -d "$home" ] || continue
        chown -R "$uid:$gid" "$home" || { _kc_err baseSetupUserPermissions "cannot chown $home to $name ($uid:$gid)"; return 1; }
    done < /etc/passwd
    return 0
}

baseSetupBuildDay() {
    local day
    if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
        day=$(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" '+%Y%m%d' 2>/dev/null) || day=
    fi
    [ -n "${day:-}" ] || day=$(LC_ALL=C date -u '+%Y%m%d') || { _kc_err baseSetupBuildDay "date failed"; return 1; }
    echo "build_day=$day" > /build_day || { _kc_err baseSetupBuildDay "cannot write /build_day"; return 1; }
    return 0
}

# ---------------------------------------------------------------------------- stripping

baseStripAndKeep() {
    local path
    while IFS= read -r path; do
        [ -n "$path" ] || continue
        [ -e "$path" ] || [ -L "$path" ] || continue
        _kc_remove_unless_kept "$path" "$@" || { _kc_err baseStripAndKeep "cannot remove $path"; return 1; }
    done
    return 0
}

baseStripDocs() {
    local dir entry
    for dir in /usr/share/doc/packages /usr/share/doc; do
        [ -d "$dir" ] || continue
        for entry in "$dir"/* "$dir"/.[!.]*; do
            [ -e "$entry" ] || [ -L "$entry" ] || continue
            [ "$entry" = /usr/share/doc/packages ] && continue
            echo "$entry"
        done | baseStripAndKeep "$@" || return 1
    done
    return 0
}

baseStripMans() {
    local dir
    for dir in /usr/share/man /usr/man /usr/local/share/man; do
        [ -d "$dir" ] || continue
        find "$dir" \( -type f -o -type l \) | baseStripAndKeep "$@" || return 1
    done
    return 0
}

baseStripInfos() {
    local dir
    for dir in /usr/share/info /usr/info; do
        [ -d "$dir" ] || continue
        find "$dir" \( -type f -o -type l \) ! -name dir | baseStripAndKeep "$@" || return 1
    done
    return 0
}

_kc_locale_kept() {
    # _kc_locale_kept NAME KEEP...: is locale NAME (en_US.utf8) kept by one of KEEP (en_US)?
    local name keep
    name=$1
    shift
    case $name in C|C.*|POSIX) return 0 ;; esac
    for keep in "$@"; do
        case $name in
            "$keep"|"$keep".*|"$keep"@*) return 0 ;;
        esac
    done
    return 1
}

baseStripLocales() {
    local dir entry name archived
    for dir in /usr/lib/locale /usr/lib64/locale; do
        [ -d "$dir" ] || continue
        for entry in "$dir"/*; do
            [ -d "$entry" ] || continue
            name=${entry##*/}
            _kc_locale_kept "$name" "$@" && continue
            rm -rf "$entry" || { _kc_err baseStripLocales "cannot remove $entry"; return 1; }
        done
        if [ -f "$dir/locale-archive" ]; then
            if _kc_have localedef; then
                archived=$(localedef --list-archive 2>/dev/null) || archived=
                for name in $archived; do
                    _kc_locale_kept "$name" "$@" && continue
                    localedef --delete-from-archive "$name" \
                        || { _kc_err baseStripLocales "localedef --delete-from-archive $name failed"; return 1; }
                done
            else
                _kc_err baseStripLocales "$dir/locale-archive left as it is: removing locales from it needs localedef, which the image does not have"
            fi
        fi
    done
    return 0
}

_kc_lang_kept() {
    # _kc_lang_kept DIR KEEP...: is translation directory DIR (de_DE, de, sr@latin) kept?
    local name keep
    name=$1
    shift
    for keep in "$@"; do
        case $name in
            "$keep"|"$keep"_*|"$keep"@*|"$keep".*) return 0 ;;
        esac
        case $keep in
            "$name"_*|"$name"@*|"$name".*) return 0 ;;
        esac
    done
    return 1
}

baseStripTranslations() {
    local dir entry
    for dir in /usr/share/locale /usr/local/share/locale; do
        [ -d "$dir" ] || continue
        for entry in "$dir"/*; do
            [ -d "$entry/LC_MESSAGES" ] || continue
            _kc_lang_kept "${entry##*/}" "$@" && continue
            find "$entry/LC_MESSAGES" -name '*.mo' -exec rm -f {} + \
                || { _kc_err baseStripTranslations "cannot remove the catalogues of $entry"; return 1; }
        done
    done
    return 0
}

baseStripTools() {
    local dirs tools dir file base tool keep
    dirs=${1:-}
    tools=${2:-}
    if [ -z "$dirs" ]; then
        _kc_err baseStripTools "usage: baseStripTools \"DIRECTORIES\" \"TOOLS TO KEEP\""
        return 1
    fi
    for dir in $dirs; do
        [ -d "$dir" ] || continue
        for file in "$dir"/*; do
            [ -f "$file" ] || [ -L "$file" ] || continue
            base=${file##*/}
            keep=
            for tool in $tools; do
                if [ "$base" = "${tool##*/}" ]; then keep=1; break; fi
            done
            [ -n "$keep" ] && continue
            rm -f "$file" || { _kc_err baseStripTools "cannot remove $file"; return 1; }
        done
    done
    return 0
}

baseStripUnusedLibs() {
    local needed bin lib base dir
    if ! _kc_have ldd; then
        _kc_err baseStripUnusedLibs "needs ldd, which the image does not have; no library removed"
        return 1
    fi
    needed=" "
    for dir in /bin /sbin /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin; do
        [ -d "$dir" ] || continue
        for bin in "$dir"/*; do
            [ -f "$bin" ] && [ -x "$bin" ] || continue
            for lib in $(ldd "$bin" 2>/dev/null | sed -n 's/^[[:space:]]*\([^[:space:]]*\) => .*/\1/p'); do
                case $needed in *" $lib "*) ;; *) needed="$needed$lib " ;; esac
            done
        done
    done
    for dir in /lib /lib64 /usr/lib /usr/lib64; do
        [ -d "$dir" ] || continue
        for lib in "$dir"/lib*.so*; do
            [ -f "$lib" ] || [ -L "$lib" ] || continue
            base=${lib##*/}
            case $base in
                ld-*|libc.so*|libc-*|libnss_*|libpam*|libresolv*|libgcc_s*|libdl*|libpthread*|libm.so*|libm-*|librt*) continue ;;
            esac
            case $needed in *" $base "*) continue ;; esac
            rm -f "$lib" || { _kc_err baseStripUnusedLibs "cannot remove $lib"; return 1; }
        done
    done
    return 0
}

suseStripKernel() {
    local drivers moddir moddirs kdir mod rel keep pattern removed noglob
    drivers=$(echo "${kiwi_drivers:-}" | tr ',' ' ')
    if [ -z "$drivers" ]; then
        _kc_err suseStripKernel "kiwi_drivers is empty (no <drivers> section in the description); refusing to remove every kernel module"
        return 1
    fi
    moddirs=
    for moddir in /lib/modules/* /usr/lib/modules/*; do
        [ -d "$moddir/kernel" ] && moddirs="$moddirs $moddir"
    done
    # the patterns ("drivers/net/*") must not be expanded against the current directory
    case $- in *f*) noglob=1 ;; *) noglob=; set -f ;; esac
    removed=0
    for moddir in $moddirs; do
        kdir="$moddir/kernel"
        [ -d "$kdir" ] || continue
        for mod in $(find "$kdir" -type f \( -name '*.ko' -o -name '*.ko.*' \)); do
            rel=${mod#"$kdir"/}
            keep=
            for pattern in $drivers; do
                # shellcheck disable=SC2254
                case $rel in
                    $pattern|$pattern/*) keep=1; break ;;
                esac
                case ${mod##*/} in
                    $pattern|$pattern.ko|$pattern.ko.*) keep=1; break ;;
                esac
            done
            [ -n "$keep" ] && continue
            if ! rm -f "$mod"; then
                [ -n "$noglob" ] || set +f
                _kc_err suseStripKernel "cannot remove $mod"
                return 1
            fi
            removed=$((removed + 1))
        done
        if _kc_have depmod; then
            depmod -a "${moddir##*/}" || _kc_err suseStripKernel "depmod -a ${moddir##*/} failed"
        fi
    done
    [ -n "$noglob" ] || set +f
    echo "suseStripKernel: removed $removed kernel modules not listed in kiwi_drivers"
    return 0
}

suseStripInitrd() {
    echo "suseStripInitrd: ims removes documentation, translations, locales, headers, sources and static libraries (kiwi's legacy boot-image tool list is not reproduced)"
    baseStripDocs || return 1
    baseStripMans || return 1
    baseStripInfos || return 1
    baseStripTranslations C || return 1
    baseStripLocales C || return 1
    rm -rf /usr/include /usr/src || { _kc_err suseStripInitrd "cannot remove /usr/include, /usr/src"; return 1; }
    local dir
    for dir in /lib /lib64 /usr/lib /usr/lib64; do
        [ -d "$dir" ] || continue
        find "$dir" -type f \( -name '*.a' -o -name '*.la' \) -exec rm -f {} + \
            || { _kc_err suseStripInitrd "cannot remove static libraries in $dir"; return 1; }
    done
    return 0
}

# ---------------------------------------------------------------------------- legacy features

suseGFXBoot() {
    _kc_err suseGFXBoot "gfxboot boot screens of legacy kiwi boot images are not supported by ims"
    return 1
}

baseSetupOEMPartition() {
    _kc_err baseSetupOEMPartition "config.oempartition of legacy kiwi OEM boot images is not supported by ims"
    return 1
}

baseSetupBoot() {
    _kc_err baseSetupBoot "linuxrc of legacy kiwi boot images is not supported by ims"
    return 1
}

baseSetupInPlaceSVNRepository() {
    _kc_err baseSetupInPlaceSVNRepository "in-place subversion repositories are not supported by ims"
    return 1
}

_kc_git_repository() {
    # _kc_git_repository FN plain|all
    local fn mode
    fn=$1
    mode=$2
    if ! _kc_have git; then
        _kc_err "$fn" "needs git, which the image does not have"
        return 1
    fi
    (
        cd / || exit 1
        git init -q . || exit 1
        printf '%s\n' '/proc/' '/sys/' '/dev/' '/run/' '/tmp/' '/var/tmp/' '/var/cache/' '/image/' \
            '/.kconfig' '/.profile' > /.gitignore
        if [ "$mode" = plain ]; then
            find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp -o -path /.git \) -prune \
                -o -type f -size -1M -print | while IFS= read -r f; do
                    if grep -Iq . "$f" 2>/dev/null; then printf '%s\n' "${f#/}"; fi
                done | git add --pathspec-from-file=- || exit 1
        else
            git add -A . || exit 1
        fi
        git -c user.name=ims -c user.email=ims@localhost commit -q -m "image root" || exit 1
    ) || { _kc_err "$fn" "git repository at / failed"; return 1; }
    return 0
}

baseSetupInPlaceGITRepository() {
    _kc_git_repository baseSetupInPlaceGITRepository all
}

baseSetupPlainTextGITRepository() {
    _kc_git_repository baseSetupPlainTextGITRepository plain
}

baseSetupBusyBox() {
    local force busybox links path app forced
    force=
    if [ "${1:-}" = "-f" ]; then
        force=1
        shift
    fi
    busybox=
    for path in /usr/bin/busybox /bin/busybox /usr/sbin/busybox; do
        if [ -x "$path" ]; then busybox=$path; break; fi
    done
    if [ -z "$busybox" ]; then
        _kc_err baseSetupBusyBox "busybox is not installed in the image"
        return 1
    fi
    links=
    for path in /usr/share/busybox/busybox.links /etc/busybox.links /usr/lib/busybox/busybox.links; do
        if [ -f "$path" ]; then links=$path; break; fi
    done
    if [ -n "$links" ]; then
        while IFS= read -r app || [ -n "$app" ]; do
            case $app in /*) ;; *) continue ;; esac
            [ -e "$app" ] || [ -L "$app" ] && continue
            mkdir -p "${app%/*}" && ln -s "$busybox" "$app" || { _kc_err baseSetupBusyBox "cannot link $app"; return 1; }
        done < "$links"
    elif [ -z "$force" ]; then
        _kc_err baseSetupBusyBox "no busybox.links file in the image; no applet linked"
        return 1
    fi
    if [ -n "$force" ]; then
        for forced in "$@"; do
            mkdir -p "${forced%/*}" && ln -sfn "$busybox" "$forced" || { _kc_err baseSetupBusyBox "cannot link $forced"; return 1; }
        done
    fi
    return 0
}

baseVagrantSetup() {
    local failed
    failed=0
    mkdir -p /vagrant || failed=1
    if [ -d /etc/sudoers.d ] || [ -f /etc/sudoers ]; then
        mkdir -p /etc/sudoers.d && echo 'vagrant ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/vagrant \
            && chmod 0440 /etc/sudoers.d/vagrant || failed=1
    else
        _kc_err baseVagrantSetup "no sudo configuration in the image; user vagrant gets no sudo rights"
        failed=1
    fi
    if [ -f /etc/ssh/sshd_config ]; then
        _kc_set_var_plain_sshd || failed=1
    fi
    if ! [ -s /home/vagrant/.ssh/authorized_keys ]; then
        _kc_err baseVagrantSetup "ims does not ship vagrant's insecure key: put /home/vagrant/.ssh/authorized_keys in the description's overlay"
        failed=1
    fi
    if _kc_unit_name sshd >/dev/null || [ -x /etc/init.d/sshd ]; then
        _kc_service baseVagrantSetup sshd on || failed=1
    fi
    return $failed
}

_kc_set_var_plain_sshd() {
    # "UseDNS no" in sshd_config (keyword-value syntax, not VAR=VALUE)
    if grep -q '^[[:space:]]*UseDNS[[:space:]]' /etc/ssh/sshd_config; then
        sed -i 's/^[[:space:]]*UseDNS[[:space:]].*/UseDNS no/' /etc/ssh/sshd_config
    else
        echo 'UseDNS no' >> /etc/ssh/sshd_config
    fi
}

# ---------------------------------------------------------------------------- mounts

baseMount() {
    local failed
    failed=0
    if ! _kc_have mount; then
        _kc_err baseMount "the image has no mount command; /proc, /sys and /dev/pts not mounted"
        return 1
    fi
    mkdir -p /proc /sys /dev/pts 2>/dev/null || :
    if ! _kc_mounted /proc; then
        mount -t proc proc /proc || { _kc_err baseMount "mounting proc on /proc failed"; failed=1; }
    fi
    if ! _kc_mounted /sys; then
        mount -t sysfs sysfs /sys || { _kc_err baseMount "mounting sysfs on /sys failed"; failed=1; }
    fi
    if ! _kc_mounted /dev/pts; then
        mount -t devpts devpts /dev/pts || { _kc_err baseMount "mounting devpts on /dev/pts failed"; failed=1; }
    fi
    return $failed
}

baseCleanMount() {
    local point failed
    failed=0
    for point in /dev/pts /sys /proc; do
        _kc_mounted "$point" || continue
        if ! _kc_have umount; then
            _kc_err baseCleanMount "the image has no umount command; $point left mounted"
            return 1
        fi
        umount "$point" 2>/dev/null || umount -l "$point" || { _kc_err baseCleanMount "cannot unmount $point"; failed=1; }
    done
    return $failed
}
