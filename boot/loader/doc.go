// Package loader is what walkvm's image loaders share: the narrow view of
// guest memory they write through (Memory), the machine's regions
// (Region, Kind) and the guest-visible memory map derived from them
// (MemoryMap, in e820 terms), a placer that finds room for boot structures
// without overlapping the image or each other (Placer), and the vCPU state
// a loader hands back (Entry), as plain data.
//
// Nothing here knows a boot format; packages multiboot, linux and pvh use
// it to load theirs.
package loader
