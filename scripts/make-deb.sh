#!/bin/bash
# Build qemu-oc's Debian binary packages from the build tree (make build
# first): `make deb`.  build/deb/qemu-oc-system-x86_VERSION_amd64.deb and
# build/deb/qemu-oc-tools_VERSION_amd64.deb, from packaging/debian/ (the
# control stanzas, copyright, changelog, maintainer scripts) and
# scripts/install.sh (PREFIX=/usr into a staging root), with Debian's
# tools: dpkg-deb to build (under fakeroot), lintian to check when it is
# installed.  The library dependencies are the packages that own the
# libraries the programs load (ldd, dpkg -S), at least at the version
# installed here (dpkg-shlibdeps would need dpkg-dev, which upgrades dpkg
# on this image).
#
# VERSION: qemu-oc's VERSION, then the Debian revision of the upstream it
# is built from (scripts/upstream.conf): 0.1-7+deb12u18.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/scripts/upstream.conf"
P=$TOP/packaging/debian
OUT=$TOP/build/deb
VERSION="$(cat "$TOP/VERSION")-${VERSION##*-}"
LOG=$OUT/make-deb.log
PACKAGES=(qemu-oc-system-x86 qemu-oc-tools)

rm -rf "$OUT"
mkdir -p "$OUT"
: > "$LOG"

# The stanza of package $1 from packaging/debian/control
stanza() {
    grep -v '^#' "$P/control" |
        awk -v p="$1" '/^Package: /{on=($2==p)} on' | sed '/^$/d'
}

# "Depends" value of the shared libraries the ELF files $@ load directly
# (their NEEDED entries): each library's package, at least at its
# installed version
shlibs() {
    local f so lib
    local -a libs=()
    for f; do objdump -p "$f" | awk '$1 == "NEEDED" {print $2}'; done |
        sort -u > "$OUT/needed.txt"
    while read -r so; do
        lib=$(ldconfig -p | awk -v so="$so" '$1 == so && /x86-64/ {print $NF; exit}')
        [ -n "$lib" ] || { echo "deb: $so is not installed" >&2; return 1; }
        libs+=("$lib")
    done < "$OUT/needed.txt"
    [ ${#libs[@]} -gt 0 ] || return 0
    # dpkg knows each file by the path its package ships (/lib or /usr/lib)
    dpkg -S "${libs[@]}" "${libs[@]/#//usr}" > "$OUT/owners.txt" 2>>"$LOG" || true
    for lib in "${libs[@]}"; do
        grep -qE ": (/usr)?${lib#/usr}\$" "$OUT/owners.txt" ||
            { echo "deb: no package owns $lib" >&2; return 1; }
    done
    sed 's/[:,].*//' "$OUT/owners.txt" | sort -u |
        while read -r pkg; do
            echo "$pkg (>= $(dpkg-query -W -f='${Version}' "$pkg"))"
        done | paste -sd, | sed 's/,/, /g'
}

for p in "${PACKAGES[@]}"; do
    R=$OUT/$p
    case $p in
        qemu-oc-system-x86) part=system ;;
        qemu-oc-tools) part=tools ;;
    esac
    echo "deb: $p $VERSION"
    PREFIX=/usr DESTDIR=$R "$TOP/scripts/install.sh" "$part" >> "$LOG"
    # Debian ships stripped programs (symbols would go to a -dbgsym)
    find "$R" -type f \( -name '*.so' -o -perm -u+x \) -exec \
        strip --strip-unneeded --remove-section=.comment \
        --remove-section=.note {} +
    gzip -9n "$R"/usr/share/man/man*/*
    install -d "$R/usr/share/doc/$p"
    install -m 0644 "$P/copyright" "$R/usr/share/doc/$p/copyright"
    sed "s/@VERSION@/$VERSION/" "$P/changelog" | gzip -9n \
        > "$R/usr/share/doc/$p/changelog.Debian.gz"
    chmod 0644 "$R/usr/share/doc/$p/changelog.Debian.gz"
    if [ -f "$P/$p.lintian-overrides" ]; then
        install -D -m 0644 "$P/$p.lintian-overrides" \
            "$R/usr/share/lintian/overrides/$p"
    fi

    install -d -m 0755 "$R/DEBIAN"
    for s in conffiles postinst prerm postrm; do
        if [ -f "$P/$p.$s" ]; then
            install -m "$([ $s = conffiles ] && echo 0644 || echo 0755)" \
                "$P/$p.$s" "$R/DEBIAN/$s"
        fi
    done
    mapfile -t bins < <(find "$R/usr/bin" "$R/usr/sbin" -type f 2>/dev/null)
    mapfile -t mods < <(find "$R/usr/lib" -name '*.so' -type f 2>/dev/null)
    deps=$(shlibs "${bins[@]}")
    recommends=""
    if [ ${#mods[@]} -gt 0 ]; then
        # a module's libraries: what only that module needs is recommended
        recommends=$(shlibs "${mods[@]}" | tr ',' '\n' |
            sed 's/^ *//' | grep -vxF -f <(echo "$deps" | tr ',' '\n' |
            sed 's/^ *//') | paste -sd, | sed 's/,/, /g')
    fi
    size=$(du -sk --exclude=DEBIAN "$R" | cut -f1)
    stanza "$p" | sed -e "s/@VERSION@/$VERSION/" -e "s/@SIZE@/$size/" \
        -e "s/@SHLIBS@/$deps/" -e "s/@RECOMMENDS@/$recommends/" \
        -e '/^Recommends: $/d' > "$R/DEBIAN/control"
    (cd "$R" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' |
        sort -z | xargs -0 md5sum) > "$R/DEBIAN/md5sums"
    chmod 0644 "$R/DEBIAN/md5sums" "$R/DEBIAN/control"
    fakeroot dpkg-deb --build --root-owner-group -Zxz "$R" \
        "$OUT/${p}_${VERSION}_amd64.deb" >> "$LOG"
    echo "deb: $(du -h "$OUT/${p}_${VERSION}_amd64.deb" | cut -f1)" \
         "build/deb/${p}_${VERSION}_amd64.deb"
done

if command -v lintian > /dev/null; then
    echo "deb: lintian (build/deb/lintian.txt)"
    if ! lintian --fail-on error --display-info "$OUT"/*.deb > "$OUT/lintian.txt" 2>&1; then
        cat "$OUT/lintian.txt"
        echo "deb: lintian reports errors" >&2
        exit 1
    fi
    grep -E '^[EW]:' "$OUT/lintian.txt" || echo "deb: lintian: no errors nor warnings"
else
    echo "deb: lintian is not installed: packages not checked"
fi
