#!/bin/sh
# Builds the bench guests (flat binaries, committed and embedded by package
# bench) with GNU as/ld, as guest/build.sh does.
# usage: build.sh [OUTDIR]   (default: this directory)
set -eu
cd "$(dirname "$0")"
out=${1:-.}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
while read -r name load; do
	gcc -m32 -nostdlib -fno-pic -Wa,--fatal-warnings -c "$name.S" -o "$tmp/$name.o"
	ld -m elf_i386 -Ttext="$load" --build-id=none -nostdlib --oformat binary -o "$out/$name.bin" "$tmp/$name.o"
done <<LIST
exit 0x1000
mmio 0x1000
pio 0x1000
long4k 0x1000
LIST
