#!/bin/sh
# Builds every guest listed below into a flat binary with GNU as/ld.
# Run by `go generate ./guest`; the .bin files are committed and embedded.
# usage: build.sh [OUTDIR]   (default: this directory)
set -eu
cd "$(dirname "$0")"
out=${1:-.}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# name load-address; guests loaded at 0x1000 must end below 0x10000 (lib.h:
# real-mode code and 16-bit relocations reach only the first 64 KiB).
while read -r name load; do
	gcc -m32 -nostdlib -fno-pic -Wa,--fatal-warnings -c "$name.S" -o "$tmp/$name.o"
	ld -m elf_i386 -Ttext="$load" --build-id=none -nostdlib --oformat binary -o "$out/$name.bin" "$tmp/$name.o"
	size=$(wc -c <"$out/$name.bin")
	if [ $((load + size)) -gt 65536 ] && [ "$load" = 0x1000 ]; then
		echo "build.sh: $name.bin ends at $((load + size)), above 0x10000" >&2
		exit 1
	fi
done <<LIST
hello 0x1000
realmode 0x1000
protmode 0x1000
paging32 0x1000
pae 0x1000
long4 0x1000
la57 0x1000
compat 0x1000
pagefault 0x1000
mmiocross 0x1000
x87mmio 0x1000
avxmmio 0x1000
ssemmio 0x1000
roundtrip 0x1000
LIST

# The multiboot guests: one source, mbinfo.S, four images (its header says
# what each is and how to run it). ELF output is stripped so that nothing
# but the code and its addresses goes in.
mbcc() { gcc "$1" -nostdlib -fno-pic -Wa,--fatal-warnings $2 -c mbinfo.S -o "$tmp/$3.o"; }
mbld="--build-id=none -nostdlib -n -s -Ttext=0x1000 --no-warn-rwx-segments"
mbcc -m32 "" mbelf32
ld -m elf_i386 $mbld -o "$out/mbelf32.elf" "$tmp/mbelf32.o"
mbcc -m64 -DMB_LONG mbelf64
ld -m elf_x86_64 $mbld -o "$out/mbelf64.elf" "$tmp/mbelf64.o"
objcopy -O elf32-i386 "$out/mbelf64.elf" "$out/mbelf64x32.elf"
mbcc -m32 -DMB_AOUT mbaout
ld -m elf_i386 -Ttext=0x1000 --build-id=none -nostdlib --oformat binary -o "$out/mbaout.bin" "$tmp/mbaout.o"

# Multiboot guests of their own (their headers say how to run them): smp
# (INIT/SIPI, MMIO on every vCPU at once) and pcdev (fw_cfg, ACPI, pc-testdev,
# IRQs through the PICs, QEMU's debug exit).
for name in smp pcdev; do
	gcc -m32 -nostdlib -fno-pic -Wa,--fatal-warnings -c "$name.S" -o "$tmp/$name.o"
	ld -m elf_i386 $mbld -o "$out/$name.elf" "$tmp/$name.o"
done
