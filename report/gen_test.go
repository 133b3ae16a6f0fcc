package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// genFormat is a paging format the generator builds walks for, computed
// here independently of the page's JavaScript.
type genFormat struct {
	walker string
	levels int  // 0: no paging
	wide   bool // 8-byte entries
}

var genModes = []struct {
	mode string
	f    genFormat
}{
	{"real", genFormat{"nonpaging", 0, false}},
	{"protected32", genFormat{"nonpaging", 0, false}},
	{"paging32", genFormat{"paging32", 2, false}},
	{"pae", genFormat{"paging64", 3, true}},
	{"long64", genFormat{"paging64", 4, true}},
	{"compat", genFormat{"paging64", 4, true}},
	{"long64-la57", genFormat{"paging64", 5, true}},
	{"real", genFormat{"nonpaging", 0, false}},
}

func hx(v uint64) string { return fmt.Sprintf("%#x", v) }

// genWalk builds a walk of la: tables at 0x10000 + 0x1000*level, a 4 KiB
// page at 0x200000 (or a large page at the level given by large).
//
// Walks carry what walkvm's tracer writes: CR3 (with PCID 3 in 4- and
// 5-level paging), the permission inputs, page size, rights, KVM's
// answer; a write's leaf gets its dirty flag set (set_ad, value_after);
// a PAE PDPTE comes from the PDPTE registers. With fault the leaf is not
// present and the walk ends in a #PF.
func genWalk(f genFormat, la uint64, access string, large int, fault bool) (Walk, uint64) {
	w := Walk{Walker: f.walker, Access: access, Linear: hx(la)}
	if f.levels == 0 {
		w.GPA = hx(la)
		w.PageSize, w.Perm = 4096, "rwxu"
		return w, la
	}
	table := uint64(0x10000 + 0x1000*f.levels)
	cr3 := table
	if f.levels >= 4 {
		pcid := 3
		w.PCID = &pcid
		cr3 |= 3
	}
	cpl, yes, no := 0, true, false
	w.CR3, w.CPL, w.CR0WP, w.SMEP, w.SMAP, w.NXE, w.AC, w.PKE = hx(cr3), &cpl, &yes, &no, &no, &f.wide, &no, &no
	var gpa uint64
	for l := f.levels; l >= 1; l-- {
		var shift, bits uint
		switch {
		case !f.wide:
			shift, bits = 12+10*uint(l-1), 10
		case f.levels == 3 && l == 3:
			shift, bits = 30, 2
		default:
			shift, bits = 12+9*uint(l-1), 9
		}
		idx := la >> shift & (1<<bits - 1)
		esz := uint64(4)
		if f.wide {
			esz = 8
		}
		entry := table + idx*esz
		if f.levels == 3 && l == 3 {
			entry = table + idx*8 // the PDPT is 32-byte aligned, in CR3's page here
		}
		val := uint64(0x1000*(l-1)+0x10000) | 0x27 // P, R/W, U/S, A
		if f.levels == 3 && l == 3 {
			val = uint64(0x10000+0x1000*(l-1)) | 1
		}
		leaf := l == 1 || l == large
		var after uint64
		if leaf {
			page := uint64(0x200000)
			if l > 1 {
				page = uint64(1) << shift // aligned large page
			}
			val = page | 0x67 // P, R/W, U/S, A, D
			if access == "write" {
				val, after = page|0x27, page|0x67 // the walk sets D
			}
			if l > 1 {
				val |= 0x80 // PS
				after |= 0x80
			}
			if fault {
				val, after = 0, 0
			}
			gpa = page | la&(1<<shift-1)
			w.PageSize = 1 << shift
		}
		lv := Level{Level: uint8(l), Table: hx(table), Index: uint16(idx), Entry: hx(entry), Value: hx(val), FromRegister: f.levels == 3 && l == 3}
		if after != 0 {
			lv.ValueAfter = hx(after)
			w.SetAD = true
		}
		w.Levels = append(w.Levels, lv)
		if leaf {
			break
		}
		table = val &^ 0xfff
	}
	if fault {
		code := "0x0"
		if access == "write" {
			code = "0x2"
		}
		w.Fault, w.PageSize, w.SetAD = &Fault{Vector: 14, Name: "#PF", ErrorCode: code, Reason: "not present"}, 0, false
		w.KVM = &KVMTranslation{GPA: "0x0"}
		return w, 0
	}
	w.GPA, w.Perm = hx(gpa), "rwxu"
	w.KVM = &KVMTranslation{GPA: hx(gpa), Valid: true, Memo: la&0x8 != 0}
	return w, gpa
}

// genTrace writes n exits moving through genModes in order, the same
// number in each, every third an I/O exit, the rest MMIO reads and writes
// with a fetch walk and an operand walk. vcpus > 1 interleaves vCPUs.
func genTrace(tb testing.TB, n, vcpus int, timed bool) ([]byte, []Record) {
	tb.Helper()
	var buf bytes.Buffer
	var recs []Record
	per := (n + len(genModes) - 1) / len(genModes)
	seq := map[int]uint64{}
	buf.WriteString(`{"header":{"format":"walkvm trace","maxphyaddr":40}}` + "\n")
	for i := range n {
		m := genModes[min(i/per, len(genModes)-1)]
		v := i % vcpus
		seq[v]++
		rip := uint64(0x1000 + 4*(i%512))
		r := Record{VCPU: v, Seq: seq[v], Mode: m.mode, CSRIP: fmt.Sprintf("%04x:%#x", 8, rip)}
		if timed {
			t, d := int64(i)*2500, int64(900)
			r.TimeNS, r.DurNS = &t, &d
		}
		if i%3 == 0 {
			r.Exit = "io"
		} else {
			r.Exit = "mmio"
			write := i%3 == 2
			r.Bytes, r.Disasm = "8b4310", "mov 0x10(%ebx),%eax"
			la := uint64(0xff000010) + uint64(i%64)*8
			large := 0
			if i%5 == 0 && m.f.levels >= 4 {
				large = 2
			}
			fw, _ := genWalk(m.f, rip, "fetch", 0, false)
			dir, acc := "read", "read"
			if write {
				dir, acc = "write", "write"
			}
			fault := i%101 == 0 && m.f.levels > 0
			ow, gpa := genWalk(m.f, la, acc, large, fault)
			r.Walks = []Walk{fw, ow}
			r.Linear, r.GPA, r.Size, r.Dir, r.Data, r.KVMGPA, r.KVMLen = hx(la), hx(gpa), 4, dir, "0x0", hx(gpa), 4
			r.Verdict = "agree"
			if i%97 == 0 {
				r.Verdict, r.Detail = "disagree", "a made-up disagreement </script><!-- to test escaping"
			}
		}
		b, err := json.Marshal(&r)
		if err != nil {
			tb.Fatal(err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
		recs = append(recs, r)
	}
	return buf.Bytes(), recs
}
