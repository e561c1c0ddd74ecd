//! `xl` output, byte for byte as Xen 4.17's `xl` prints it (`tools/xl/xl_info.c`,
//! `xl_vcpu.c`, `xl_sched.c`), from plain structs the dom0 kernel fills from
//! `sysctl`/`domctl`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::cfg::{Affinity, CpuSet, DomainConfig};

/// One domain, as `libxl_dominfo` (from `XEN_DOMCTL_getdomaininfo`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DomainInfo {
    /// Domain id.
    pub domid: u32,
    /// Name (from XenStore in Xen; from the toolstack here).
    pub name: String,
    /// UUID (`xen_domain_handle_t`).
    pub uuid: [u8; 16],
    /// `tot_pages` in KiB.
    pub current_memkb: u64,
    /// Outstanding claims in KiB.
    pub outstanding_memkb: u64,
    /// vCPUs online.
    pub vcpu_online: u32,
    /// `XEN_DOMINF_running`
    pub running: bool,
    /// `XEN_DOMINF_blocked`
    pub blocked: bool,
    /// `XEN_DOMINF_paused`
    pub paused: bool,
    /// `XEN_DOMINF_shutdown`
    pub shutdown: bool,
    /// `SHUTDOWN_*` code (poweroff 0, reboot 1, suspend 2, crash 3, watchdog 4, soft_reset 5).
    pub shutdown_reason: u8,
    /// `XEN_DOMINF_dying`
    pub dying: bool,
    /// CPU time used, in ns.
    pub cpu_time_ns: u64,
    /// Security label (`-Z`/`-v`), if any.
    pub ssid_label: Option<String>,
}

/// C's `(float)ns / 1e9`: xl converts to single precision first.
fn secs(ns: u64) -> f64 {
    f64::from(ns as f32) / 1e9
}

/// `xl list` (and `-v`, `-Z`).
pub fn list(doms: &[DomainInfo], verbose: bool, context: bool) -> String {
    let mut o =
        String::from("Name                                        ID   Mem VCPUs\tState\tTime(s)");
    if verbose {
        o.push_str("   UUID                            Reason-Code\tSecurity Label");
    }
    if context && !verbose {
        o.push_str("   Security Label");
    }
    o.push('\n');
    const LETTERS: &[u8] = b"-rscwS";
    for d in doms {
        let reason = if d.shutdown { d.shutdown_reason } else { 0 };
        let rl = LETTERS
            .get(usize::from(reason))
            .map_or('?', |c| char::from(*c));
        let flag = |b: bool, c: char| if b { c } else { '-' };
        let _ = write!(
            o,
            "{:<40} {:>5} {:>5} {:>5}     {}{}{}{}{}{}  {:>8.1}",
            d.name,
            d.domid,
            (d.current_memkb + d.outstanding_memkb) / 1024,
            d.vcpu_online,
            flag(d.running, 'r'),
            flag(d.blocked, 'b'),
            flag(d.paused, 'p'),
            flag(d.shutdown, 's'),
            rl,
            flag(d.dying, 'd'),
            secs(d.cpu_time_ns),
        );
        if verbose {
            let _ = write!(o, " {}", uuid_string(&d.uuid));
            if d.shutdown {
                let _ = write!(o, " {:>8x}", reason);
            } else {
                let _ = write!(o, " {:>8}", "-");
            }
        }
        if verbose || context {
            let _ = write!(o, " {:>16}", d.ssid_label.as_deref().unwrap_or("-"));
        }
        o.push('\n');
    }
    o
}

/// `LIBXL_UUID_FMT`.
pub fn uuid_string(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

// ---------------------------------------------------------------------------------------
// JSON as yajl 2 writes it with `yajl_gen_beautify` (four-space indent, `"key": value`,
// empty containers as `{\n\n<indent>}`).

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true`/`false`
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, keys in order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// yajl's beautified text (no final newline).
    pub fn to_yajl(&self) -> String {
        let mut o = String::new();
        self.write(&mut o, 0);
        o
    }

    fn write(&self, o: &mut String, depth: usize) {
        let indent = |o: &mut String, d: usize| {
            for _ in 0..d {
                o.push_str("    ");
            }
        };
        match self {
            Json::Null => o.push_str("null"),
            Json::Bool(b) => o.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => {
                let _ = write!(o, "{i}");
            }
            Json::Str(s) => json_string(o, s),
            Json::Array(items) => {
                o.push_str("[\n");
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        o.push_str(",\n");
                    }
                    indent(o, depth + 1);
                    v.write(o, depth + 1);
                }
                o.push('\n');
                indent(o, depth);
                o.push(']');
            }
            Json::Object(fields) => {
                o.push_str("{\n");
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        o.push_str(",\n");
                    }
                    indent(o, depth + 1);
                    json_string(o, k);
                    o.push_str(": ");
                    v.write(o, depth + 1);
                }
                o.push('\n');
                indent(o, depth);
                o.push('}');
            }
        }
    }
}

/// yajl's string escaping.
fn json_string(o: &mut String, s: &str) {
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '\x08' => o.push_str("\\b"),
            '\x0c' => o.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
}

fn obj(fields: Vec<(&str, Json)>) -> Json {
    Json::Object(
        fields
            .into_iter()
            .map(|(k, v)| (String::from(k), v))
            .collect(),
    )
}

fn bitmap(set: &CpuSet, nr: usize) -> Json {
    Json::Array(
        set.iter()
            .take_while(|c| *c < nr)
            .map(|c| Json::Int(c as i64))
            .collect(),
    )
}

/// `libxl_domain_config_gen_json` for the fields this toolstack has, in libxl's order and
/// with libxl's names; fields at their default are left out, as libxl does.
pub fn domain_config_json(cfg: &DomainConfig, uuid: &[u8; 16], nr_cpus: usize) -> Json {
    let mut c_info = vec_fields();
    c_info.push(("type", Json::Str("pv".into())));
    c_info.push(("name", Json::Str(cfg.name.clone())));
    c_info.push(("uuid", Json::Str(uuid_string(uuid))));

    let mut b_info = vec_fields();
    b_info.push(("max_vcpus", Json::Int(i64::from(cfg.max_vcpus))));
    b_info.push((
        "avail_vcpus",
        Json::Array((0..cfg.vcpus).map(|v| Json::Int(i64::from(v))).collect()),
    ));
    let affinity = |a: &Affinity| -> Option<Json> {
        let n = match a {
            Affinity::Unset => return None,
            Affinity::All(_) => cfg.max_vcpus as usize,
            Affinity::PerVcpu(v) => v.len(),
        };
        Some(Json::Array(
            (0..n)
                .filter_map(|i| a.for_vcpu(i))
                .map(|s| bitmap(&s, nr_cpus))
                .collect(),
        ))
    };
    if let Some(j) = affinity(&cfg.cpus) {
        b_info.push(("vcpu_hard_affinity", j));
    }
    if let Some(j) = affinity(&cfg.cpus_soft) {
        b_info.push(("vcpu_soft_affinity", j));
    }
    b_info.push(("max_memkb", Json::Int(cfg.max_memkb as i64)));
    b_info.push(("target_memkb", Json::Int(cfg.target_memkb as i64)));
    let mut sched = vec_fields();
    if let Some(w) = cfg.cpu_weight {
        sched.push(("weight", Json::Int(i64::from(w))));
    }
    if let Some(c) = cfg.cap {
        sched.push(("cap", Json::Int(i64::from(c))));
    }
    b_info.push(("sched_params", obj(sched)));
    b_info.push(("kernel", Json::Str(cfg.kernel.clone())));
    if let Some(c) = &cfg.cmdline {
        b_info.push(("cmdline", Json::Str(c.clone())));
    }
    if let Some(r) = &cfg.ramdisk {
        b_info.push(("ramdisk", Json::Str(r.clone())));
    }
    b_info.push(("type.pv", obj(vec_fields())));

    let mut top = vec_fields();
    top.push(("c_info", obj(c_info)));
    top.push(("b_info", obj(b_info)));
    top.push(("on_poweroff", Json::Str(cfg.on_poweroff.json_name().into())));
    top.push(("on_reboot", Json::Str(cfg.on_reboot.json_name().into())));
    top.push(("on_watchdog", Json::Str(cfg.on_watchdog.json_name().into())));
    top.push(("on_crash", Json::Str(cfg.on_crash.json_name().into())));
    top.push((
        "on_soft_reset",
        Json::Str(cfg.on_soft_reset.json_name().into()),
    ));
    obj(top)
}

fn vec_fields() -> Vec<(&'static str, Json)> {
    Vec::new()
}

/// `xl list -l`: a JSON array of `{"domid": N, "config": {...}}` (yajl's final newline
/// plus `puts`'s).
pub fn list_long(doms: &[(u32, Json)]) -> String {
    let arr = Json::Array(
        doms.iter()
            .map(|(id, c)| {
                obj(alloc::vec![
                    ("domid", Json::Int(i64::from(*id))),
                    ("config", c.clone())
                ])
            })
            .collect(),
    );
    let mut s = arr.to_yajl();
    s.push_str("\n\n");
    s
}

/// `xl create -n` / `xl -N create`: the one domain's object (printf_info, no final newline
/// but yajl's).
pub fn create_dryrun(cfg: &Json) -> String {
    let mut s = obj(alloc::vec![("domid", Json::Null), ("config", cfg.clone())]).to_yajl();
    s.push('\n');
    s
}

// ---------------------------------------------------------------------------------------

/// `xenctx`'s names for the rflags bits 0..21 (`flag_values`: when clear, when set).
const FLAG_NAMES: [(Option<&str>, Option<&str>); 22] = [
    (None, Some("c")),
    (None, None),
    (None, Some("p")),
    (None, None),
    (None, Some("a")),
    (None, None),
    (Some("nz"), Some("z")),
    (None, Some("s")),
    (None, Some("tf")),
    (None, Some("i")),
    (None, Some("d=b")),
    (None, Some("o")),
    (None, None),
    (None, None),
    (None, Some("nt")),
    (None, None),
    (None, Some("rf")),
    (None, Some("v86")),
    (None, Some("ac")),
    (None, Some("vif")),
    (None, Some("vip")),
    (None, Some("cid")),
];

/// `xenctx DOMID VCPU` for a 64-bit PV vCPU (`print_ctx_64` without a symbol table):
/// the registers, then with `all` the control (`cr0 cr2 cr3 cr4`) and debug registers
/// (`dr0-3 dr6 dr7`). The stack dump xenctx prints after them is not produced.
pub fn xenctx(c: &xen_abi::xen::VcpuGuestContext, all: bool) -> String {
    let r = &c.user_regs;
    let mut o = String::new();
    let _ = write!(o, "rip: {:016x}\nflags: {:08x}", r.rip, r.rflags);
    for (i, names) in FLAG_NAMES.iter().enumerate().rev() {
        let name = if (r.rflags >> i) & 1 == 1 {
            names.1
        } else {
            names.0
        };
        if let Some(n) = name {
            let _ = write!(o, " {n}");
        }
    }
    o.push('\n');
    let _ = writeln!(o, "rsp: {:016x}", r.rsp);
    let rows = [
        [("rax", r.rax), ("rcx", r.rcx), ("rdx", r.rdx)],
        [("rbx", r.rbx), ("rsi", r.rsi), ("rdi", r.rdi)],
        [("rbp", r.rbp), (" r8", r.r8), (" r9", r.r9)],
        [("r10", r.r10), ("r11", r.r11), ("r12", r.r12)],
        [("r13", r.r13), ("r14", r.r14), ("r15", r.r15)],
    ];
    for [(a, x), (b, y), (c, z)] in rows {
        let _ = writeln!(o, "{a}: {x:016x}\t{b}: {y:016x}\t{c}: {z:016x}");
    }
    let _ = writeln!(
        o,
        " cs: {:04x}\t ss: {:04x}\t ds: {:04x}\t es: {:04x}",
        r.cs, r.ss, r.ds, r.es
    );
    let _ = writeln!(o, " fs: {:04x} @ {:016x}", r.fs, c.fs_base);
    let _ = writeln!(
        o,
        " gs: {:04x} @ {:016x}/{:016x}",
        r.gs, c.gs_base_kernel, c.gs_base_user
    );
    if all {
        o.push('\n');
        for i in [0usize, 2, 3, 4] {
            let _ = writeln!(o, "cr{i}: {:016x}", c.ctrlreg[i]);
        }
        o.push('\n');
        for i in [0usize, 1, 2, 3, 6, 7] {
            let _ = writeln!(o, "dr{i}: {:016x}", c.debugreg[i]);
        }
    }
    o
}

// ---------------------------------------------------------------------------------------

/// What `xenstore-ls` needs from a store.
pub trait StoreView {
    /// Children of `path`, or Xen's error name.
    fn directory(&mut self, path: &str) -> Result<Vec<String>, String>;
    /// Value of `path`.
    fn read(&mut self, path: &str) -> Result<Vec<u8>, String>;
    /// Permission entries of `path` (`n0`, `r1`...).
    fn perms(&mut self, path: &str) -> Result<Vec<String>, String>;
}

/// `sanitise_value`: printable ASCII as is, `\` doubled, anything else `\xNN` (and
/// `\t`, `\n`, `\r` by name), as xenstore-ls shows values.
pub fn xenstore_sanitise(v: &[u8]) -> String {
    let mut o = String::new();
    for &b in v {
        match b {
            b'\\' => o.push_str("\\\\"),
            b'\t' => o.push_str("\\t"),
            b'\n' => o.push_str("\\n"),
            b'\r' => o.push_str("\\r"),
            0x20..=0x7e => o.push(b as char),
            _ => {
                let _ = write!(o, "\\x{b:02x}");
            }
        }
    }
    o
}

/// `xenstore-ls [-f] [-p] PATH` (`do_ls`, output not to a terminal so never truncated):
/// one line per node below `path`, indented one space per level (`-f`: full paths
/// instead), `name = "value"`, with `-p` the permissions in parentheses. A node that
/// vanishes or cannot be listed below the top is skipped, as C does; at the top the
/// error is returned.
pub fn xenstore_ls(
    s: &mut dyn StoreView,
    path: &str,
    full: bool,
    perms: bool,
) -> Result<String, String> {
    let mut out = String::new();
    ls_level(s, path, 0, full, perms, &mut out)?;
    Ok(out)
}

fn ls_level(
    s: &mut dyn StoreView,
    path: &str,
    depth: usize,
    full: bool,
    show_perms: bool,
    out: &mut String,
) -> Result<(), String> {
    let children = match s.directory(path) {
        Ok(c) => c,
        Err(e) if depth > 0 && (e == "ENOENT" || e == "EACCES") => return Ok(()),
        Err(e) => return Err(e),
    };
    for c in children {
        let sep = if path.ends_with('/') { "" } else { "/" };
        let child = format!("{path}{sep}{c}");
        if full {
            out.push_str(&child);
        } else {
            for _ in 0..depth {
                out.push(' ');
            }
            out.push_str(&c);
        }
        match s.read(&child) {
            Err(_) => out.push(':'),
            Ok(v) => {
                let _ = write!(out, " = \"{}\"", xenstore_sanitise(&v));
                if show_perms {
                    if let Ok(p) = s.perms(&child) {
                        let _ = write!(out, "  ({})", p.join(","));
                    }
                }
            }
        }
        out.push('\n');
        ls_level(s, &child, depth + 1, full, show_perms, out)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------

/// What `xl info` shows (`uname`, `physinfo`, `xen_version`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostInfo {
    /// `host` (uname nodename).
    pub host: String,
    /// `release` (dom0 kernel release).
    pub release: String,
    /// `version` (dom0 kernel version string).
    pub version: String,
    /// `machine`.
    pub machine: String,
    /// `nr_cpus`.
    pub nr_cpus: u32,
    /// `max_cpu_id`.
    pub max_cpu_id: u32,
    /// `nr_nodes`.
    pub nr_nodes: u32,
    /// `cores_per_socket`.
    pub cores_per_socket: u32,
    /// `threads_per_core`.
    pub threads_per_core: u32,
    /// CPU speed in kHz (printed as MHz with three decimals).
    pub cpu_khz: u32,
    /// `hw_caps` words.
    pub hw_cap: [u32; 8],
    /// `virt_caps` flags: pv, hvm, hvm_directio, hap, shadow, iommu_hap_pt_share, vmtrace,
    /// vpmu, gnttab_v1, gnttab_v2.
    pub cap_pv: bool,
    /// See `cap_pv`.
    pub cap_hvm: bool,
    /// See `cap_pv`.
    pub cap_hvm_directio: bool,
    /// See `cap_pv`.
    pub cap_hap: bool,
    /// See `cap_pv`.
    pub cap_shadow: bool,
    /// See `cap_pv`.
    pub cap_iommu_hap_pt_share: bool,
    /// See `cap_pv`.
    pub cap_vmtrace: bool,
    /// See `cap_pv`.
    pub cap_vpmu: bool,
    /// See `cap_pv`.
    pub cap_gnttab_v1: bool,
    /// See `cap_pv`.
    pub cap_gnttab_v2: bool,
    /// Total pages.
    pub total_pages: u64,
    /// Free pages.
    pub free_pages: u64,
    /// Outstanding claimed pages.
    pub outstanding_pages: u64,
    /// Sharing: freed pages.
    pub sharing_freed_pages: u64,
    /// Sharing: used frames.
    pub sharing_used_frames: u64,
    /// CPUs not in any pool.
    pub free_cpus: u32,
    /// `xen_major`.
    pub xen_major: u32,
    /// `xen_minor`.
    pub xen_minor: u32,
    /// `xen_extra` (e.g. `.0`).
    pub xen_extra: String,
    /// `xen_caps` (e.g. `xen-3.0-x86_64 hvm-3.0-x86_32 ...`).
    pub xen_caps: String,
    /// `xen_scheduler` (`credit`, `credit2`...).
    pub xen_scheduler: String,
    /// Page size (4096).
    pub pagesize: u32,
    /// `platform_params` virt_start.
    pub virt_start: u64,
    /// `xen_changeset`.
    pub changeset: String,
    /// `xen_commandline`.
    pub commandline: String,
    /// `cc_compiler`.
    pub compiler: String,
    /// `cc_compile_by`.
    pub compile_by: String,
    /// `cc_compile_domain`.
    pub compile_domain: String,
    /// `cc_compile_date`.
    pub compile_date: String,
    /// `build_id`.
    pub build_id: String,
}

/// `xl info [ITEM]`: every line, or with `item` only the value of the first matching
/// key (xl's `maybe_printf`: a key that starts with `item`).
pub fn info(h: &HostInfo, item: Option<&str>) -> String {
    let pages_per_mb = if h.pagesize == 0 {
        256
    } else {
        u64::from((1u32 << 20) / h.pagesize.max(1)).max(1)
    };
    let mut lines: Vec<String> = Vec::new();
    let mut p = |k: &str, v: String| lines.push(format!("{k:<23}: {v}\n"));
    p("host", h.host.clone());
    p("release", h.release.clone());
    p("version", h.version.clone());
    p("machine", h.machine.clone());
    p("nr_cpus", format!("{}", h.nr_cpus));
    p("max_cpu_id", format!("{}", h.max_cpu_id));
    p("nr_nodes", format!("{}", h.nr_nodes));
    p("cores_per_socket", format!("{}", h.cores_per_socket));
    p("threads_per_core", format!("{}", h.threads_per_core));
    p(
        "cpu_mhz",
        format!("{}.{:03}", h.cpu_khz / 1000, h.cpu_khz % 1000),
    );
    let c = &h.hw_cap;
    p(
        "hw_caps",
        format!(
            "{:08x}:{:08x}:{:08x}:{:08x}:{:08x}:{:08x}:{:08x}:{:08x}",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
        ),
    );
    let mut caps = String::new();
    for (on, name) in [
        (h.cap_pv, " pv"),
        (h.cap_hvm, " hvm"),
        (h.cap_hvm && h.cap_hvm_directio, " hvm_directio"),
        (h.cap_pv && h.cap_hvm_directio, " pv_directio"),
        (h.cap_hap, " hap"),
        (h.cap_shadow, " shadow"),
        (h.cap_iommu_hap_pt_share, " iommu_hap_pt_share"),
        (h.cap_vmtrace, " vmtrace"),
        (h.cap_vpmu, " vpmu"),
        (h.cap_gnttab_v1, " gnttab-v1"),
        (h.cap_gnttab_v2, " gnttab-v2"),
    ] {
        if on {
            caps.push_str(name);
        }
    }
    // "virt_caps              :%s": no blank after the colon.
    lines.push(format!("{:<23}:{}\n", "virt_caps", caps));
    let mut p = |k: &str, v: String| lines.push(format!("{k:<23}: {v}\n"));
    p("total_memory", format!("{}", h.total_pages / pages_per_mb));
    p(
        "free_memory",
        format!(
            "{}",
            h.free_pages.saturating_sub(h.outstanding_pages) / pages_per_mb
        ),
    );
    p(
        "sharing_freed_memory",
        format!("{}", h.sharing_freed_pages / pages_per_mb),
    );
    p(
        "sharing_used_memory",
        format!("{}", h.sharing_used_frames / pages_per_mb),
    );
    p(
        "outstanding_claims",
        format!("{}", h.outstanding_pages / pages_per_mb),
    );
    p("free_cpus", format!("{}", h.free_cpus));
    p("xen_major", format!("{}", h.xen_major));
    p("xen_minor", format!("{}", h.xen_minor));
    p("xen_extra", h.xen_extra.clone());
    p(
        "xen_version",
        format!("{}.{}{}", h.xen_major, h.xen_minor, h.xen_extra),
    );
    p("xen_caps", h.xen_caps.clone());
    p("xen_scheduler", h.xen_scheduler.clone());
    p("xen_pagesize", format!("{}", h.pagesize));
    p(
        "platform_params",
        format!("virt_start=0x{:x}", h.virt_start),
    );
    p("xen_changeset", h.changeset.clone());
    p("xen_commandline", h.commandline.clone());
    p("cc_compiler", h.compiler.clone());
    p("cc_compile_by", h.compile_by.clone());
    p("cc_compile_domain", h.compile_domain.clone());
    p("cc_compile_date", h.compile_date.clone());
    p("build_id", h.build_id.clone());
    p("xend_config_format", String::from("4"));
    let mut out = String::new();
    for l in lines {
        match item {
            None => out.push_str(&l),
            Some(it) => {
                if l.starts_with(it) {
                    if let Some(pos) = l.find(':') {
                        if l.as_bytes().get(pos + 1) == Some(&b' ') {
                            out.push_str(l.get(pos + 2..).unwrap_or(""));
                        }
                    }
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------

/// One vCPU, as `libxl_vcpuinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VcpuInfo {
    /// vCPU number.
    pub vcpuid: u32,
    /// Physical CPU it is on.
    pub cpu: u32,
    /// Online.
    pub online: bool,
    /// Blocked.
    pub blocked: bool,
    /// Running.
    pub running: bool,
    /// CPU time, ns.
    pub vcpu_time_ns: u64,
    /// Hard affinity.
    pub hard: CpuSet,
    /// Soft affinity.
    pub soft: CpuSet,
}

/// `xl vcpu-list` header.
pub fn vcpu_list_header() -> String {
    format!(
        "{:<32} {:>5} {:>5} {:>5} {:>5} {:>9} {}\n",
        "Name", "ID", "VCPU", "CPU", "State", "Time(s)", "Affinity (Hard / Soft)"
    )
}

/// One `xl vcpu-list` line; `nr_cpus` is the host's `max_cpu_id + 1`.
pub fn vcpu_list_line(name: &str, domid: u32, v: &VcpuInfo, nr_cpus: usize) -> String {
    let mut o = format!("{:<32} {:>5} {:>5}", name, domid, v.vcpuid);
    if !v.online {
        let _ = write!(o, "{:>5} {:>3}-p ", '-', '-');
    } else {
        let _ = write!(
            o,
            "{:>5} {:>3}{}- ",
            v.cpu,
            if v.running { 'r' } else { '-' },
            if v.blocked { 'b' } else { '-' }
        );
    }
    let _ = write!(o, "{:>9.1}  ", secs(v.vcpu_time_ns));
    o.push_str(&v.hard.to_xl_string(nr_cpus));
    o.push_str(" / ");
    o.push_str(&v.soft.to_xl_string(nr_cpus));
    o.push('\n');
    o
}

// ---------------------------------------------------------------------------------------

/// Credit scheduler pool parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditPool {
    /// Pool name (`Pool-0`).
    pub name: String,
    /// `tslice_ms`.
    pub tslice_ms: i32,
    /// `ratelimit_us`.
    pub ratelimit_us: i32,
    /// `vcpu_migr_delay_us`.
    pub migration_delay_us: i32,
}

/// `Cpupool Pool-0: tslice=30ms ratelimit=1000us migration-delay=0us`.
pub fn sched_credit_pool(p: &CreditPool) -> String {
    format!(
        "Cpupool {}: tslice={}ms ratelimit={}us migration-delay={}us\n",
        p.name, p.tslice_ms, p.ratelimit_us, p.migration_delay_us
    )
}

/// `xl sched-credit` table header.
pub fn sched_credit_header() -> String {
    format!("{:<33} {:>4} {:>6} {:>4}\n", "Name", "ID", "Weight", "Cap")
}

/// One `xl sched-credit` line.
pub fn sched_credit_line(name: &str, domid: u32, weight: i32, cap: i32) -> String {
    format!("{name:<33} {domid:>4} {weight:>6} {cap:>4}\n")
}

// ---------------------------------------------------------------------------------------

/// xl's `uptime_to_string`.
pub fn uptime_string(mut uptime: u64, short: bool) -> String {
    let day = uptime / 86400;
    uptime -= day * 86400;
    let hour = uptime / 3600;
    uptime -= hour * 3600;
    let min = uptime / 60;
    let sec = uptime - min * 60;
    let days = match day {
        0 => String::new(),
        1 => String::from("1 day, "),
        d => format!("{d} days, "),
    };
    if short {
        format!("{days}{hour:>2}:{min:02}")
    } else {
        format!("{days}{hour:>2}:{min:02}:{sec:02}")
    }
}

/// `xl uptime` header (not printed with `-s`).
pub fn uptime_header() -> String {
    format!("{:<33} {:>4} {}\n", "Name", "ID", "Uptime")
}

/// One `xl uptime` line. `now_hms` is the wall-clock time (`%H:%M:%S`) for `-s`.
pub fn uptime_line(name: &str, domid: u32, uptime_s: u64, short: bool, now_hms: &str) -> String {
    if short {
        format!(
            " {} up {}, {} ({})\n",
            now_hms,
            uptime_string(uptime_s, true),
            name,
            domid
        )
    } else {
        format!(
            "{:<33} {:>4} {}\n",
            name,
            domid,
            uptime_string(uptime_s, false)
        )
    }
}
