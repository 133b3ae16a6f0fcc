"use strict";
(function () {
  const dataEl = document.getElementById("trace-data");
  const recs = JSON.parse(dataEl.textContent);
  // The parsed records are all the page needs: drop the text (tens of MB
  // for a long trace) from the DOM.
  dataEl.textContent = "";
  const PAGE = 100;
  // MAXPHYADDR from the trace's header line, 0 when the trace has none.
  const MAXPHY = +document.body.dataset.maxphyaddr || 0;
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const vcpu = (r) => r.vcpu || 0;

  // ---- filters and the paged table ---------------------------------------
  const keys = { exit: "f-exit", mode: "f-mode", verdict: "f-verdict" };
  for (const [k, id] of Object.entries(keys)) {
    const seen = new Map();
    for (const r of recs) if (r[k]) seen.set(r[k], (seen.get(r[k]) || 0) + 1);
    const sel = $(id);
    for (const [v, n] of [...seen].sort((a, b) => b[1] - a[1])) {
      const o = document.createElement("option");
      o.value = v;
      o.textContent = v + " (" + n + ")";
      sel.appendChild(o);
    }
    sel.addEventListener("change", () => { page = 0; refilter(); });
  }
  $("f-text").addEventListener("input", () => { page = 0; refilter(); });
  $("prev").addEventListener("click", () => { if (page > 0) { page--; draw(); } });
  $("next").addEventListener("click", () => { if ((page + 1) * PAGE < shown.length) { page++; draw(); } });

  let shown = [];
  let page = 0;
  let selected = -1;

  function access(r) {
    if (!r.direction && !r.gpa) return "";
    let s = (r.direction || "") + (r.size ? " " + r.size + "B" : "");
    if (r.linear) s += " lin " + r.linear;
    if (r.gpa) s += " → " + r.gpa;
    if (r.kvm_gpa && r.kvm_gpa !== r.gpa) s += " (KVM " + r.kvm_gpa + ")";
    if (r.direction === "write" && r.data) s += " = " + r.data;
    return s;
  }

  function refilter() {
    const want = {};
    for (const [k, id] of Object.entries(keys)) want[k] = $(id).value;
    const text = $("f-text").value.trim().toLowerCase();
    shown = [];
    for (let i = 0; i < recs.length; i++) {
      const r = recs[i];
      if (want.exit && r.exit !== want.exit) continue;
      if (want.mode && r.mode !== want.mode) continue;
      if (want.verdict && r.verdict !== want.verdict) continue;
      if (text && !((r.disasm || "") + " " + r.cs_rip + " " + access(r) + " " + (r.bytes || "")).toLowerCase().includes(text)) continue;
      shown.push(i);
    }
    draw();
  }

  function draw() {
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    if (page >= pages) page = pages - 1;
    $("count").textContent = shown.length + " of " + recs.length + " exits";
    $("page").textContent = "page " + (page + 1) + " / " + pages;
    const out = [];
    for (const i of shown.slice(page * PAGE, (page + 1) * PAGE)) {
      const r = recs[i];
      out.push('<tr data-i="' + i + '"' + (i === selected ? ' class="sel"' : "") + "><td>" + r.seq + "</td><td>" + vcpu(r) + "</td><td>" + esc(r.exit) +
        "</td><td>" + esc(r.mode) + '</td><td class="mono">' + esc(r.cs_rip) + '</td><td class="mono">' + esc(r.bytes) +
        '</td><td class="mono">' + esc(r.disasm) + '</td><td class="mono">' + esc(access(r)) + '</td><td class="v-' + esc(r.verdict) + '">' + esc(r.verdict) + "</td></tr>");
    }
    $("rows").innerHTML = out.join("");
  }

  $("rows").addEventListener("click", (e) => {
    const tr = e.target.closest("tr");
    if (!tr) return;
    const r = recs[+tr.dataset.i];
    location.hash = "exit=" + r.seq + (vcpu(r) ? "&vcpu=" + vcpu(r) : "");
  });
  for (const g of document.querySelectorAll("#timeline-svg .span")) {
    g.addEventListener("click", () => {
      $("f-mode").value = "";
      $("f-exit").value = "";
      $("f-verdict").value = "";
      $("f-text").value = "";
      refilter();
      const i = +g.dataset.first;
      page = Math.floor(shown.indexOf(i) / PAGE);
      location.hash = "exit=" + recs[i].seq + (vcpu(recs[i]) ? "&vcpu=" + vcpu(recs[i]) : "");
    });
  }

  // ---- paging formats -----------------------------------------------------
  const B = (n) => 1n << BigInt(n);
  const hex = (v) => "0x" + v.toString(16);
  const big = (s) => { try { return BigInt(s); } catch (e) { return 0n; } };

  // format describes the walk's paging structures: the address width, the
  // index field of each level and the names (SDM Vol. 3A §4.3-4.5).
  function format(w) {
    const depth = w.levels && w.levels.length ? w.levels[0].level : 0;
    if (w.walker === "paging32") return { name: "32-bit paging", bits: 32, wide: false, top: 2, index: { 2: [31, 22], 1: [21, 12] }, names: { 2: "PDE", 1: "PTE" }, tables: { 2: "PD", 1: "PT" } };
    const names = { 5: "PML5E", 4: "PML4E", 3: "PDPTE", 2: "PDE", 1: "PTE" };
    const tables = { 5: "PML5", 4: "PML4", 3: "PDPT", 2: "PD", 1: "PT" };
    if (w.walker === "ept") {
      const f = { name: depth + "-level EPT", bits: 12 + 9 * depth, wide: true, top: depth, index: {}, names: {}, tables: {}, ept: true };
      for (let l = 1; l <= depth; l++) { f.index[l] = [12 + 9 * l - 1, 12 + 9 * (l - 1)]; f.names[l] = "EPT " + names[l]; f.tables[l] = "EPT " + tables[l]; }
      return f;
    }
    if (depth === 3) return { name: "PAE paging", bits: 32, wide: true, pae: true, top: 3, index: { 3: [31, 30], 2: [29, 21], 1: [20, 12] }, names, tables };
    if (depth >= 4) {
      const f = { name: depth + "-level paging", bits: 12 + 9 * depth, wide: true, top: depth, index: {}, names, tables };
      for (let l = 1; l <= depth; l++) f.index[l] = [12 + 9 * l - 1, 12 + 9 * (l - 1)];
      return f;
    }
    return null;
  }

  // entryBits names an entry's bits for its format and level; rsvd marks
  // bits the format reserves, including those from MAXPHYADDR up (when the
  // trace has it); set marks the accessed/dirty flags the walk set.
  function entryBits(f, level, v, leaf, setMask) {
    const bits = [];
    const add = (name, lo, hi, rsvd) => {
      hi = hi === undefined ? lo : hi;
      let val = 0n, set = false;
      for (let b = hi; b >= lo; b--) {
        val = (val << 1n) | ((v >> BigInt(b)) & 1n);
        if ((setMask >> BigInt(b)) & 1n) set = true;
      }
      bits.push({ name: hi > lo ? name + "=" + val : name, on: val !== 0n, rsvd: !!rsvd, set, title: hi > lo ? "bits " + hi + ":" + lo : "bit " + lo });
    };
    const high = () => { if (f.wide && MAXPHY && MAXPHY < 52) add("rsvd", MAXPHY, f.pae ? 62 : 51, true); };
    if (f.ept) {
      add("R", 0); add("W", 1); add("X", 2);
      if (leaf) { add("MT", 3, 5); add("IPAT", 6); }
      add(leaf && level > 1 ? "PS" : level > 1 ? "PS" : "bit7", 7);
      add("A", 8); if (leaf) add("D", 9);
      high();
      return bits;
    }
    if (f.pae && level === 3) {
      add("P", 0); add("rsvd", 1, 2, true); add("PWT", 3); add("PCD", 4); add("rsvd", 5, 8, true); high(); add("rsvd", 63, 63, true);
      return bits;
    }
    add("P", 0); add("R/W", 1); add("U/S", 2); add("PWT", 3); add("PCD", 4); add("A", 5);
    const large = leaf && level > 1;
    if (leaf) add("D", 6);
    if (level === 1) add("PAT", 7);
    else if (f.wide && level >= 4) add("PS", 7, 7, true);
    else add("PS", 7);
    if (leaf) add("G", 8);
    if (large) add("PAT", 12);
    if (!f.wide && large) { add("PSE-36", 13, 20); add("rsvd", 21, 21, true); }
    if (f.wide && large) add("rsvd", 13, level === 3 ? 29 : 20, true);
    high();
    if (f.wide && leaf && !f.pae) add("PKEY", 59, 62);
    if (f.wide) add("NX", 63);
    return bits;
  }

  function entryAddr(f, level, v, leaf) {
    if (!f.wide) {
      if (leaf && level === 2) return (v & 0xffc00000n) | (((v >> 13n) & 0xffn) << 32n);
      return v & 0xfffff000n;
    }
    const mask = 0x000ffffffffff000n;
    if (leaf && level > 1) return v & mask & ~(B(12 + 9 * (level - 1)) - 1n);
    return v & mask;
  }

  // ---- the linear address cut into its fields ------------------------------
  const fieldColors = { 5: "#882255", 4: "#332288", 3: "#cc79a7", 2: "#009e73", 1: "#e69f00", 0: "#7a8590" };
  function addrSVG(f, w, leafLevel) {
    const la = big(w.linear);
    const fields = [];
    let low = 0;
    if (f) {
      for (let l = f.top; l >= 1; l--) {
        if (l < leafLevel) break;
        const [hi, lo] = f.index[l];
        fields.push({ l, hi, lo, name: f.tables[l] + " index", v: (la >> BigInt(lo)) & (B(hi - lo + 1) - 1n) });
      }
      low = leafLevel > 1 ? f.index[leafLevel][0] + 1 : 12;
      if (leafLevel > 1 && !f.wide) low = 22;
    }
    fields.push({ l: 0, hi: (low || (f ? 12 : 32)) - 1, lo: 0, name: f ? "offset" : "physical address", v: la & (B(low || (f ? 12 : 32)) - 1n) });
    if (!f) fields[0].hi = 31;
    const top = f ? f.bits - 1 : 31;
    const width = 860, unit = width / (top + 1);
    let x = 0;
    let s = '<svg xmlns="http://www.w3.org/2000/svg" class="addr-svg" width="' + (width + 2) + '" height="58" role="img" aria-label="linear address fields">';
    for (const fd of fields) {
      const wpx = (fd.hi - fd.lo + 1) * unit;
      s += '<g class="field" data-level="' + fd.l + '"><rect x="' + x.toFixed(1) + '" y="0" width="' + wpx.toFixed(1) + '" height="22" fill="' + fieldColors[fd.l] + '" stroke="#fff"/>' +
        '<text x="' + (x + wpx / 2).toFixed(1) + '" y="15" text-anchor="middle" fill="#fff">' + (wpx > 60 ? esc(fd.name) + " " : "") + fd.v.toString(wpx > 60 ? 10 : 16) + "</text>" +
        '<text x="' + (x + 1).toFixed(1) + '" y="36" fill="#5b6570">' + fd.hi + "</text>" +
        (wpx > 50 ? '<text x="' + (x + wpx - 1).toFixed(1) + '" y="36" text-anchor="end" fill="#5b6570">' + fd.lo + "</text>" : "") +
        '<text x="' + (x + wpx / 2).toFixed(1) + '" y="52" text-anchor="middle" fill="#1b1f24">' + (fd.hi - fd.lo + 1) + " bits</text></g>";
      x += wpx;
    }
    return s + "</svg>";
  }

  // ---- the permission check (SDM Vol. 3A §4.6, §4.7) ----------------------
  // check decides an access from the entries' rights and the inputs the
  // trace records, the way the CPU does, and names each step. It returns
  // the rows to draw and the outcome: "allowed", or "fault" with the #PF
  // error code the CPU would push.
  function check(f, w, present, rsvd, rw, us, nx, leafV) {
    const rows = [];
    const write = w.access === "write", fetch = w.access === "fetch";
    const user = !!w.user, implicit = !!w.implicit;
    const wp = !!w.cr0_wp, smep = !!w.smep, smap = !!w.smap, nxe = !!w.nxe, ac = !!w.ac, pke = !!w.pke;
    const yes = (b) => (b ? "1" : "0");
    rows.push(["access", (user ? "user-mode " : "supervisor-mode ") + esc(w.access) + (implicit ? " (implicit: descriptor tables, TSS)" : "")]);
    rows.push(["inputs", "CPL " + w.cpl + ", CR0.WP=" + yes(wp) + ", CR4.SMEP=" + yes(smep) + ", CR4.SMAP=" + yes(smap) + ", EFER.NXE=" + yes(nxe) +
      ", RFLAGS.AC=" + yes(ac) + ", CR4.PKE=" + yes(pke) + (w.pkru ? ", PKRU=" + esc(w.pkru) : "")]);
    let code = (write ? 2 : 0) | (user ? 4 : 0);
    if (fetch && (smep || (f.wide && nxe))) code |= 16;
    const fail = (why) => ({ outcome: "fault", why });
    let res = null;
    if (!present) res = fail("an entry is not present");
    else if (rsvd) { res = fail("a reserved bit is set"); code |= 1 | 8; }
    else {
      code |= 1;
      const mark = (ok, text) => rows.push([text, ok ? '<span class="ok">passes</span>' : '<span class="bad">faults</span>']);
      if (user && !us) { mark(false, "U/S=0 at some level: a user-mode access to a supervisor page"); res = fail("a user-mode access to a supervisor-mode page"); }
      if (!res && write && !rw) {
        const ok = !user && !wp;
        mark(ok, "R/W=0 at some level: a write" + (user ? " at CPL 3" : ok ? " by the supervisor with CR0.WP=0 is allowed" : " with CR0.WP=1"));
        if (!ok) res = fail("a write to a read-only page");
      }
      if (!res && fetch && nx && nxe) { mark(false, "XD=1 at some level with EFER.NXE=1: a fetch"); res = fail("a fetch from a no-execute page"); }
      if (!res && !user && us && fetch && smep) { mark(false, "SMEP: a supervisor fetch from a user page"); res = fail("SMEP"); }
      if (!res && !user && us && !fetch && smap && (implicit || !ac)) {
        mark(false, "SMAP: a supervisor " + (implicit ? "implicit " : "") + "data access to a user page" + (implicit ? "" : " with RFLAGS.AC=0"));
        res = fail("SMAP");
      }
      if (!res && pke && us && !fetch && w.pkru) {
        const key = Number((leafV >> 59n) & 15n), pkru = Number(big(w.pkru));
        const adB = (pkru >> (2 * key)) & 1, wdB = (pkru >> (2 * key + 1)) & 1;
        if (adB) { mark(false, "PKRU.AD" + key + "=1: access disabled for key " + key); res = fail("protection key " + key); code |= 32; }
        else if (wdB && write && (user || wp)) { mark(false, "PKRU.WD" + key + "=1: write disabled for key " + key); res = fail("protection key " + key); code |= 32; }
      }
      if (!res) res = { outcome: "allowed" };
    }
    if (res.outcome === "fault") res.code = code;
    return { rows, res };
  }

  // ---- one walk -------------------------------------------------------------
  function drawWalk(r, w, n) {
    const f = format(w);
    const lv = w.levels || [];
    const last = lv.length ? lv[lv.length - 1] : null;
    let leafLevel = 1;
    let present = true, rsvd = false, rw = true, us = true, nx = false, leafV = 0n;
    let adLevels = 0;
    const boxes = [];
    for (let i = 0; i < lv.length; i++) {
      const e = lv[i];
      const v = big(e.value);
      const after = e.value_after ? big(e.value_after) : v;
      const p = (v & 1n) === 1n || (f && f.ept && (v & 7n) !== 0n);
      const ps = e.level > 1 && ((v >> 7n) & 1n) === 1n && !(f.pae && e.level === 3) && !(f.wide && e.level >= 4 && !f.ept);
      const leaf = p && (e.level === 1 || ps);
      if (!p) present = false;
      if (!(f.pae && e.level === 3) && !f.ept) {
        rw = rw && ((v >> 1n) & 1n) === 1n;
        us = us && ((v >> 2n) & 1n) === 1n;
        if (f.wide) nx = nx || ((v >> 63n) & 1n) === 1n;
      }
      if (leaf) { leafLevel = e.level; leafV = v; }
      const setMask = after ^ v;
      if (setMask) adLevels++;
      const bits = entryBits(f, e.level, v, leaf, setMask);
      const rsvdSet = p && bits.filter((b) => b.rsvd && b.on).length;
      if (rsvdSet) rsvd = true;
      let kv = f.tables[e.level] + " at " + esc(e.table) + "<br>" + f.names[e.level] + "[" + e.index + "] " +
        (e.from_register ? "from the PDPTE registers" : "at " + esc(e.entry)) + "<br>= " + esc(e.value);
      if (setMask) kv += '<br><span class="set-note">walkvm set ' + [[5n, "A"], [6n, "D"], [8n, "A"], [9n, "D"]].filter(([b]) => (setMask >> b) & 1n).map((x) => x[1]).join(" and ") + ": " + esc(e.value_after) + "</span>";
      if (p) kv += "<br>→ " + (leaf ? "page " : "table ") + hex(entryAddr(f, e.level, v, leaf)) + (leaf && e.level > 1 ? " (" + sizeName(f, e.level) + " page)" : "");
      else kv += '<br><span class="bad">not present: the walk stops (#PF)</span>';
      if (rsvdSet) kv += '<br><span class="bad">reserved bit set: the walk stops (#PF, RSVD)</span>';
      boxes.push('<div class="box level" data-level="' + e.level + '"' + (setMask ? ' data-ad="' + hex(setMask) + '"' : "") + ' style="border-color:' + fieldColors[e.level] + '"><div class="t">level ' + e.level + ": " + f.names[e.level] + '</div><div class="kv">' + kv + '</div><div class="bits">' +
        bits.map((b) => '<span class="bit' + (b.on ? " on" : "") + (b.rsvd ? " rsvd" : "") + (b.set ? " set" : "") + '" title="' + b.title + (b.rsvd ? ", reserved" : "") + (b.set ? ", set by walkvm" : "") + '">' + esc(b.name) + "</span>").join("") + "</div></div>");
    }
    const linear = big(w.linear);
    let head = '<h3>walk ' + (n + 1) + ": " + esc(w.access) + " of " + esc(w.linear) + " — " + esc(w.walker) + (f ? " (" + f.name + ")" : " (no paging)") + "</h3>";
    let body = '<div class="addr">' + addrSVG(f, w, leafLevel) + "</div>";
    if (f && lv.length) {
      const root = lv[0].table;
      let kv;
      if (w.cr3) {
        kv = "= " + esc(w.cr3) + "<br>table " + esc(root) + (w.pcid !== undefined ? '<br><span class="pcid">PCID ' + w.pcid + " (CR3[11:0], CR4.PCIDE=1)</span>" : f.ept ? "" : '<br><span class="note">no PCID (CR4.PCIDE=0)</span>');
      } else {
        kv = "table " + esc(root) + '<br><span class="note">CR3 and PCID: not in the trace</span>';
      }
      if (f.pae) kv += "<br>(PDPTEs " + (lv[0].from_register ? "in the PDPTE registers, loaded with CR3" : "read from memory at CR3") + ")";
      if (MAXPHY) kv += '<br><span class="note">MAXPHYADDR ' + MAXPHY + "</span>";
      const cr3 = '<div class="box cr3"><div class="t">' + (f.ept ? "EPTP" : "CR3") + '</div><div class="kv">' + kv + "</div></div>";
      body += '<div class="chain">' + [cr3].concat(boxes).join('<span class="arrow">→</span>') + "</div>";
    }
    const rows = [];
    const gpa = big(w.gpa);
    let checked = "none";
    if (f && lv.length && !f.ept) {
      if (w.cpl !== undefined) {
        // The check from the recorded inputs, beside what walkvm's walker did.
        const c = check(f, w, present, rsvd, rw, us, nx, leafV);
        rows.push(...c.rows);
        checked = c.res.outcome;
        const code = c.res.code !== undefined ? " #PF(" + hex(BigInt(c.res.code)) + ")" : "";
        rows.push(["outcome", c.res.outcome === "allowed" ? '<span class="ok">allowed</span>' : '<span class="bad">fault: ' + esc(c.res.why) + code + "</span>"]);
        if (w.fault || w.gpa) {
          const walker = w.fault ? "fault " + esc(w.fault.name || "#" + w.fault.vector) + (w.fault.error_code ? "(" + esc(w.fault.error_code) + ")" : "") + (w.fault.reason ? ": " + esc(w.fault.reason) : "") : "translated";
          const same = w.fault ? c.res.outcome === "fault" && (!w.fault.error_code || w.fault.vector !== 14 || big(w.fault.error_code) === BigInt(c.res.code)) : c.res.outcome === "allowed";
          rows.push(["walkvm's walker", walker + (same ? ' <span class="ok">the same</span>' : ' <span class="bad">differs</span>')]);
        }
      } else {
        // An older trace: the check from the entries alone.
        const wantW = w.access === "write", wantX = w.access === "fetch";
        rows.push(["present at every level", present ? '<span class="ok">yes</span>' : '<span class="bad">no</span>']);
        rows.push(["R/W at every level", rw ? "1 (writable)" : "0 (read-only" + (wantW ? ': a write faults unless CR0.WP=0 and CPL<3)' : ")")]);
        rows.push(["U/S at every level", us ? "1 (user page)" : "0 (supervisor page: a CPL 3 access faults)"]);
        if (f.wide) rows.push(["NX at any level", nx ? "1 (no execute" + (wantX ? ': a fetch faults if EFER.NXE=1)' : ")") : "0"]);
        rows.push(["outcome", '<span class="note">the permission inputs are not in the trace</span>']);
      }
      if (w.fault && w.cpl === undefined) rows.push(["walkvm's walker", '<span class="bad">fault ' + esc(w.fault.name || "#" + w.fault.vector) + (w.fault.error_code ? "(" + esc(w.fault.error_code) + ")" : "") + "</span>"]);
      if (present && last && !w.fault) {
        const leaf = lv[lv.length - 1];
        const lvBits = f.wide || leaf.level === 1 ? 12 + 9 * (leaf.level - 1) : 22;
        const mine = entryAddr(f, leaf.level, big(leaf.value), true) | (linear & (B(lvBits) - 1n));
        rows.push(["page + offset", hex(mine) + (mine === gpa ? ' <span class="ok">= the walk\'s GPA</span>' : ' <span class="bad">≠ the walk\'s GPA ' + esc(w.gpa) + "</span>")]);
      }
      if (w.set_ad) rows.push(["A/D flags walkvm set", adLevels + " entr" + (adLevels === 1 ? "y" : "ies") + " (marked above): the instruction completed in userspace"]);
      else if (w.cpl !== undefined) rows.push(["A/D flags walkvm set", '<span class="note">none: this walk only looked (KVM made the access)</span>']);
      else rows.push(["A/D flags walkvm set", '<span class="note">not in the trace (entries above show A and D as read)</span>']);
    }
    if (w.fault) {
      if (!f || !lv.length || f.ept) rows.push(["walkvm's walker", '<span class="bad">fault ' + esc(w.fault.name || "#" + w.fault.vector) + (w.fault.error_code ? "(" + esc(w.fault.error_code) + ")" : "") + "</span>"]);
    } else if (w.error) {
      rows.push(["walkvm's walker", '<span class="bad">' + esc(w.error) + "</span>"]);
    } else {
      rows.push(["walkvm's GPA", esc(w.gpa) + (w.page_size ? " (" + pageName(w.page_size) + " page" + (w.perm ? ", rights " + esc(w.perm) : "") + (w.pkey !== undefined ? ", key " + w.pkey : "") + ")" : "")]);
    }
    if (r.kvm_gpa && r.linear && big(r.linear) === linear && !w.fault) {
      rows.push(["KVM's GPA (the exit)", esc(r.kvm_gpa) + (big(r.kvm_gpa) === gpa ? ' <span class="ok">agrees</span>' : ' <span class="bad">differs</span>')]);
    }
    let kvm = "none";
    if (w.kvm_translate) {
      const k = w.kvm_translate;
      const agrees = k.valid ? !w.fault && big(k.gpa) === gpa : !!w.fault;
      kvm = agrees ? "agrees" : "differs";
      rows.push(["KVM_TRANSLATE", (k.valid ? "GPA " + esc(k.gpa) : "no translation") + (k.memo ? ' <span class="note">(KVM\'s answer for the same entries, remembered)</span>' : "") +
        (agrees ? ' <span class="ok">agrees</span>' : ' <span class="bad">differs</span>')]);
    } else if (w.cpl !== undefined) {
      rows.push(["KVM_TRANSLATE", '<span class="note">not asked' + (w.fault ? " (a permission fault: KVM translates for a supervisor read)" : " (-verify off)") + "</span>"]);
    } else {
      rows.push(["KVM_TRANSLATE", '<span class="note">not in the trace</span>']);
    }
    body += '<table class="check">' + rows.map((x) => "<tr><td>" + x[0] + "</td><td>" + x[1] + "</td></tr>").join("") + "</table>";
    return '<div class="walk" data-levels="' + lv.length + '" data-walker="' + esc(w.walker) + '" data-cr3="' + esc(w.cr3 || "") + '" data-pcid="' + (w.pcid !== undefined ? w.pcid : "") +
      '" data-check="' + checked + '" data-kvm="' + kvm + '" data-ad="' + adLevels + '" data-outcome="' + (w.fault ? "fault" : w.error ? "error" : "translated") + '">' + head + body + "</div>";
  }

  function pageName(n) {
    n = Number(n);
    if (n >= 1 << 30) return n / (1 << 30) + " GiB";
    if (n >= 1 << 20) return n / (1 << 20) + " MiB";
    return n / 1024 + " KiB";
  }

  function sizeName(f, level) {
    if (!f.wide) return "4 MiB";
    return { 2: "2 MiB", 3: "1 GiB", 4: "512 GiB" }[level] || "large";
  }

  function select(i) {
    selected = i;
    const r = recs[i];
    let h = '<p><b>exit ' + r.seq + "</b> (vCPU " + vcpu(r) + "): " + esc(r.exit) + " in " + esc(r.mode) + " at " + esc(r.cs_rip) +
      (r.insn_rip ? ", instruction at " + esc(r.insn_rip) : "") + (r.bytes ? ' — <code>' + esc(r.bytes) + "</code> <code>" + esc(r.disasm) + "</code>" : "") +
      (r.verdict ? ' — verdict <span class="' + (r.verdict === "disagree" ? "bad" : "ok") + '">' + esc(r.verdict) + "</span>" : "") + "</p>";
    if (access(r)) h += "<p>access: <code>" + esc(access(r)) + "</code></p>";
    if (r.alternatives && r.alternatives.length) {
      h += '<p class="alts">other readings that end at RIP and make the same write: ' + r.alternatives.map((a) => "<code>" + esc(a.insn_rip) + ": " + esc(a.bytes) + " " + esc(a.disasm) + "</code>").join(", ") +
        ' <span class="note">(traced: the one without ignored prefixes)</span></p>';
    }
    if (r.detail) h += '<p class="bad">' + esc(r.detail) + "</p>";
    const ws = r.walks || [];
    if (!ws.length) h += '<p class="note">This exit has no walks.</p>';
    ws.forEach((w, n) => { h += drawWalk(r, w, n); });
    $("walks").innerHTML = h;
    draw();
    const tr = document.querySelector("#rows tr.sel");
    if (tr) tr.parentElement.parentElement.parentElement.scrollTop = tr.offsetTop - 40;
  }

  function fromHash() {
    const m = /exit=(\d+)/.exec(location.hash);
    if (!m) return;
    const v = /vcpu=(\d+)/.exec(location.hash);
    const seq = +m[1], cpu = v ? +v[1] : null;
    const i = recs.findIndex((r) => r.seq === seq && (cpu === null || vcpu(r) === cpu));
    if (i < 0) { $("walks").innerHTML = '<p class="bad">No exit with seq ' + seq + " in this trace.</p>"; return; }
    const at = shown.indexOf(i);
    if (at >= 0) page = Math.floor(at / PAGE);
    select(i);
  }
  window.addEventListener("hashchange", fromHash);
  refilter();
  fromHash();
})();
