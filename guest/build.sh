#!/bin/sh
# Builds every guest listed below into a flat binary with GNU as/ld.
# Run by `go generate ./guest`; the .bin files are committed and embedded.
# usage: build.sh [OUTDIR]   (default: this directory)
set -eu
cd "$(dirname "$0")"
out=${1:-.}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# name load-address
while read -r name load; do
	gcc -m32 -nostdlib -fno-pic -Wa,--fatal-warnings -c "$name.S" -o "$tmp/$name.o"
	ld -m elf_i386 -Ttext="$load" --build-id=none -nostdlib --oformat binary -o "$out/$name.bin" "$tmp/$name.o"
done <<LIST
hello 0x1000
LIST
