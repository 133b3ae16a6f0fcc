// Package loader is what walkvm's image loaders share: the narrow view of
// guest memory they write through (Memory), the guest-visible memory map
// derived from the machine's memory map (MemoryMap, in e820 terms), a
// placer that finds room for boot structures without overlapping the image,
// each other or what the machine already holds (Placer), and the vCPU state
// a loader hands back (Entry), as plain data.
//
// The machine's memory is described once, by package memory's Map; nothing
// here keeps a second description of it. Nothing here knows a boot format;
// packages multiboot, linux and pvh use it to load theirs.
package loader
