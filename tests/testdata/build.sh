#!/bin/sh
# Builds the integration tests' own guests (flat binaries, committed).
# usage: build.sh [OUTDIR]
set -eu
cd "$(dirname "$0")"
out=${1:-.}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
while read -r name load; do
	gcc -m32 -nostdlib -fno-pic -Wa,--fatal-warnings -c "$name.S" -o "$tmp/$name.o"
	ld -m elf_i386 -Ttext="$load" --build-id=none -nostdlib --oformat binary -o "$out/$name.bin" "$tmp/$name.o"
done <<LIST
faults 0x1000
oracle 0x1000
LIST
