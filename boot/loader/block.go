package loader

// Block lays out the pieces of one boot-data buffer at aligned offsets:
// Add reserves room, String reserves room for a NUL-terminated string and
// remembers it, Bytes returns the zeroed buffer with the strings in.
type Block struct {
	n    uint64
	strs []blockString
}

type blockString struct {
	off uint64
	s   string
}

// Add reserves size bytes aligned to align (a power of two) and returns
// their offset.
func (b *Block) Add(size, align uint64) uint64 {
	if align == 0 {
		align = 1
	}
	off := (b.n + align - 1) &^ (align - 1)
	b.n = off + size
	return off
}

// String reserves len(s)+1 bytes for s and its NUL and returns the offset.
func (b *Block) String(s string) uint64 {
	off := b.Add(uint64(len(s))+1, 1)
	b.strs = append(b.strs, blockString{off, s})
	return off
}

// Size is the block's size so far.
func (b *Block) Size() uint64 { return b.n }

// Bytes returns a zeroed buffer of the block's size with its strings in.
func (b *Block) Bytes() []byte {
	buf := make([]byte, b.n)
	for _, s := range b.strs {
		copy(buf[s.off:], s.s)
	}
	return buf
}
