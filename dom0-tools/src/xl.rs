//! `xl` command lines: words, options and arguments, parsed as Xen 4.17's `xl` does
//! (`tools/xl/xl.c`, `xl_cmdtable.c`, `xl_utils.c`'s `def_getopt`, each `main_*`).
//!
//! What matches xl: unambiguous command prefixes (`xl li` is `xl list`), GNU `getopt_long`
//! option handling (options anywhere, `--`, `-abc` clusters, `-dX`/`-d X`, `--long[=X]`
//! and unique long-option prefixes), and the messages: `command not implemented`,
//! `option `x' not supported.`, `'xl pause' requires at least 1 argument.` followed by
//! the command's usage, `Usage: xl [-vtT] ...` help texts.
//!
//! Domains stay as typed (name or number); the caller resolves them ([`DomainResolver`]).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// A domain as typed: a name or a numeric id; resolve it with a [`DomainResolver`].
pub type DomainArg = String;

/// Resolves what the user typed to a domain id (`libxl_domain_qualifier_to_domid`).
pub trait DomainResolver {
    /// The id of the domain called `name`.
    fn domid_by_name(&self, name: &str) -> Option<u32>;
    /// xl's `find_domain` (`libxl_domain_qualifier_to_domid`): all digits is an id,
    /// taken as is (a missing domain is reported by the command, as in xl); anything else
    /// is a name, and an unknown name gives xl's message.
    fn find_domain(&self, arg: &str) -> Result<u32, String> {
        let numeric = !arg.is_empty() && arg.bytes().all(|c| c.is_ascii_digit());
        let found = if numeric {
            arg.parse::<u32>().ok()
        } else {
            self.domid_by_name(arg)
        };
        found.ok_or_else(|| format!("{arg} is an invalid domain identifier (rc=-6)"))
    }
}

/// `vcpu-pin`'s VCPU argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcpuSel {
    /// `all`
    All,
    /// A vCPU number.
    Id(u32),
}

/// `vcpu-pin`'s affinity arguments: `-` leaves it alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSpec {
    /// `-` (or, for soft affinity, not given).
    Keep,
    /// A CPU list in xl's syntax (`0-3,^1`, `all`, `node:0`); parse it with
    /// [`crate::cfg::CpuSet::parse`].
    Cpus(String),
}

/// `console -t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleType {
    /// `pv`
    Pv,
    /// `serial`
    Serial,
    /// `vuart`
    Vuart,
}

/// `shutdown`/`reboot` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `-a`: every domain but dom0.
    All,
    /// One domain.
    Domain(DomainArg),
}

/// A parsed `xl` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `xl list [-l] [-v] [-Z] [-c] [-n] [Domain]`
    List {
        /// `-l`: JSON details.
        long: bool,
        /// `-v`: UUIDs, reason codes and security labels.
        verbose: bool,
        /// `-Z`: security labels.
        context: bool,
        /// `-c`: cpupool column.
        cpupool: bool,
        /// `-n`: NUMA affinity column.
        numa: bool,
        /// One domain, or all.
        domain: Option<DomainArg>,
    },
    /// `xl create [options] <ConfigFile> [KEY=VALUE...]`
    Create {
        /// The config file (`-f FILE` or the first argument without `=`).
        config_file: Option<String>,
        /// `KEY=VALUE` settings appended to the file.
        overrides: Vec<String>,
        /// `-c`: attach to the console once created.
        console: bool,
        /// `-p`: leave it paused.
        paused: bool,
        /// `-q`
        quiet: bool,
        /// `-n` / `--dryrun` or the global `-N`: print the configuration only.
        dryrun: bool,
        /// `-d`
        debug: bool,
    },
    /// `xl destroy [-f] <Domain>`
    Destroy {
        /// The domain.
        domain: DomainArg,
        /// `-f`: allow domain 0.
        force: bool,
    },
    /// `xl shutdown [-a] [-w] [-F] <Domain>`
    Shutdown {
        /// What to shut down.
        target: Target,
        /// `-w`: wait for it.
        wait: bool,
        /// `-F`: ACPI fallback.
        fallback: bool,
    },
    /// `xl reboot [-a] [-w] [-F] <Domain>`
    Reboot {
        /// What to reboot.
        target: Target,
        /// `-w`
        wait: bool,
        /// `-F`
        fallback: bool,
    },
    /// `xl pause <Domain>`
    Pause {
        /// The domain.
        domain: DomainArg,
    },
    /// `xl unpause <Domain>`
    Unpause {
        /// The domain.
        domain: DomainArg,
    },
    /// `xl console [-t type] [-n num] <Domain>`
    Console {
        /// The domain.
        domain: DomainArg,
        /// `-t`
        kind: Option<ConsoleType>,
        /// `-n`
        num: i32,
    },
    /// `xl info [-n] [ITEM]`
    Info {
        /// `-n`: NUMA topology.
        numa: bool,
        /// Print only the item whose name starts with this.
        item: Option<String>,
    },
    /// `xl dmesg [-c]`
    Dmesg {
        /// `-c`: clear after reading.
        clear: bool,
    },
    /// `xl block-attach <Domain> <disk-spec-component(s)>...`
    BlockAttach {
        /// The domain.
        domain: DomainArg,
        /// The spec's components, to be joined with commas.
        spec: Vec<String>,
    },
    /// `xl block-list <Domain(s)>`
    BlockList {
        /// The domains.
        domains: Vec<DomainArg>,
    },
    /// `xl block-detach [-f] <Domain> <DevId>` (a number or a vdev such as `xvdb`).
    BlockDetach {
        /// The domain.
        domain: DomainArg,
        /// The device.
        dev: String,
        /// `-f`: remove it without waiting for the guest.
        force: bool,
    },
    /// `xl network-attach <Domain> [key=value]...`
    NetworkAttach {
        /// The domain.
        domain: DomainArg,
        /// The vif spec's settings, to be joined with commas.
        spec: Vec<String>,
    },
    /// `xl network-list <Domain(s)>`
    NetworkList {
        /// The domains.
        domains: Vec<DomainArg>,
    },
    /// `xl network-detach <Domain> <DevId|mac>`
    NetworkDetach {
        /// The domain.
        domain: DomainArg,
        /// The device number, or its MAC address (it contains a `:`).
        dev: String,
    },
    /// `xl vcpu-list [Domain...]`
    VcpuList {
        /// The domains, or all.
        domains: Vec<DomainArg>,
    },
    /// `xl vcpu-pin [-f] <Domain> <VCPU|all> <Hard|-|all> [<Soft|-|all>]`
    VcpuPin {
        /// The domain.
        domain: DomainArg,
        /// Which vCPU(s).
        vcpu: VcpuSel,
        /// Hard affinity.
        hard: PinSpec,
        /// Soft affinity.
        soft: PinSpec,
        /// `-f`
        force: bool,
    },
    /// `xl sched-credit [-d <Domain> [-w W] [-c C]] [-s [-t T] [-r R] [-m M]] [-p POOL]`
    SchedCredit {
        /// `-d`
        domain: Option<DomainArg>,
        /// `-w`
        weight: Option<i64>,
        /// `-c`
        cap: Option<i64>,
        /// `-s`
        schedparam: bool,
        /// `-t` (ms)
        tslice_ms: Option<i64>,
        /// `-r` (us)
        ratelimit_us: Option<i64>,
        /// `-m` (us)
        migration_delay_us: Option<i64>,
        /// `-p`
        cpupool: Option<String>,
    },
    /// `xl uptime [-s] [Domain...]`
    Uptime {
        /// `-s`: short format.
        short: bool,
        /// The domains, or all.
        domains: Vec<DomainArg>,
    },
    /// `xl domid <DomainName>`
    Domid {
        /// The name.
        name: String,
    },
    /// `xl domname <DomainId>`
    Domname {
        /// The id as typed.
        domid: String,
    },
    /// `xl help [CMD]` (and `xl`, `xl CMD -h`): the text is in [`help`].
    Help {
        /// The command, or the whole list.
        command: Option<String>,
    },
    /// `xenctx [-a] <DOMID> [VCPU]` (Xen's `tools/xentrace/xenctx`): a vCPU's registers.
    Xenctx {
        /// The domain id as typed (xenctx takes numbers only).
        domid: String,
        /// The vCPU (default 0).
        vcpu: u32,
        /// `-a`/`--all`: control and debug registers too.
        all: bool,
    },
    /// `bench-create <ConfigFile> [N]` (this toolstack's own): create the domain N times
    /// (default 5), each time measuring from the start of the create to the guest's
    /// first console output in TSC cycles (instructions under QEMU's `-icount`), then
    /// destroy it; prints a `bench:` line.
    BenchCreate {
        /// The config file.
        config_file: String,
        /// Rounds.
        rounds: u32,
    },
    /// Xen's XenStore tools: `xenstore-ls [-f] [-p] [PATH]`, `xenstore-read PATH...`,
    /// `xenstore-write PATH VALUE...`, `xenstore-rm PATH...`, `xenstore-list PATH`,
    /// `xenstore-exists PATH`, `xenstore-chmod PATH PERM...`, run against dom0's xenstored.
    Xenstore {
        /// `ls`, `read`, `write`, `rm`, `list`, `exists` or `chmod`.
        tool: String,
        /// Option letters given (`f`, `p`, `s`...).
        flags: String,
        /// The other arguments.
        args: Vec<String>,
    },
    /// `blkdev SUBCOMMAND ARGS...` (this toolstack's own): dom0's physical disks
    /// (`list`, `read`, `write`, `fill`, `check`, `flush`), parsed by dom0's disk driver.
    Blkdev {
        /// The words after `blkdev`.
        args: Vec<String>,
    },
    /// dom0's network tools (this toolstack's own, named after Linux's): `brctl show`,
    /// `brctl showmacs xenbr0`, `ifconfig`, `netbench ...`; parsed by dom0's network.
    NetTool {
        /// `brctl`, `ifconfig` or `netbench`.
        tool: String,
        /// The words after it.
        args: Vec<String>,
    },
    /// A command Xen has that this toolstack does not have yet.
    NotYet {
        /// Its name (`block-attach`, `xenstore-ls`...).
        command: String,
    },
}

/// The result of parsing a line that is not a runnable command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What xl prints on stdout (help text), possibly empty.
    pub stdout: String,
    /// What xl prints on stderr, possibly empty.
    pub stderr: String,
    /// xl's exit status.
    pub status: i32,
}

impl Failure {
    fn err(msg: impl Into<String>, status: i32) -> Failure {
        Failure {
            stdout: String::new(),
            stderr: msg.into(),
            status,
        }
    }
}

/// A parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Nothing typed.
    Empty,
    /// A command to run.
    Run(Command),
    /// Output to print instead (errors, or help asked with `-h`).
    Print(Failure),
}

// ---------------------------------------------------------------------------------------
// The command table (xl_cmdtable.c), for the commands this toolstack has.

struct Spec {
    name: &'static str,
    can_dryrun: bool,
    modifies: bool,
    desc: &'static str,
    usage: &'static str,
    options: Option<&'static str>,
}

const TABLE: &[Spec] = &[
    Spec {
        name: "create",
        can_dryrun: true,
        modifies: true,
        desc: "Create a domain from config file <filename>",
        usage: "<ConfigFile> [options] [vars]",
        options: Some(
            "-c                      Connect to the console after the domain is created.\n\
             -d                      Enable debug messages.\n\
             -e                      Do not wait in the background for the death of the domain.\n\
             -F                      Run in foreground until death of the domain.\n\
             -f FILE, --defconfig=FILE\n                     Use the given configuration file.\n\
             -h                      Print this help.\n\
             -n, --dryrun            Dry run - prints the resulting configuration\n\
             \x20                        (deprecated in favour of global -N option).\n\
             -p                      Leave the domain paused after it is created.\n\
             -q, --quiet             Quiet.\n\
             -V, --vncviewer         Connect to the VNC display after the domain is created.\n\
             -A, --vncviewer-autopass\n\
             \x20                       Pass VNC password to viewer via stdin.\n\
             --ignore-global-affinity-masks Ignore global masks in xl.conf.",
        ),
    },
    Spec {
        name: "list",
        can_dryrun: false,
        modifies: false,
        desc: "List information about all/some domains",
        usage: "[options] [Domain]\n",
        options: Some(
            "-l, --long              Output all VM details\n\
             -v, --verbose           Prints out UUIDs and security context\n\
             -Z, --context           Prints out security context\n\
             -c, --cpupool           Prints the cpupool the domain is in\n\
             -n, --numa              Prints out NUMA node affinity",
        ),
    },
    Spec {
        name: "destroy",
        can_dryrun: false,
        modifies: true,
        desc: "Terminate a domain immediately",
        usage: "[options] <Domain>\n",
        options: Some(
            "-f                      Permit destroying domain 0, which will only succeed\n\
             \x20                       when run from disaggregated toolstack domain with a\n\
             \x20                       hardware domain distinct from domain 0.",
        ),
    },
    Spec {
        name: "shutdown",
        can_dryrun: false,
        modifies: true,
        desc: "Issue a shutdown signal to a domain",
        usage: "[options] <-a|Domain>",
        options: Some(
            "-a, --all               Shutdown all guest domains.\n\
             -h                      Print this help.\n\
             -F                      Fallback to ACPI power event for HVM guests with\n\
             \x20                       no PV drivers.\n\
             -w, --wait              Wait for guest(s) to shutdown.\n",
        ),
    },
    Spec {
        name: "reboot",
        can_dryrun: false,
        modifies: true,
        desc: "Issue a reboot signal to a domain",
        usage: "[options] <-a|Domain>",
        options: Some(
            "-a, --all               Shutdown all guest domains.\n\
             -h                      Print this help.\n\
             -F                      Fallback to ACPI reset event for HVM guests with\n\
             \x20                       no PV drivers.\n\
             -w, --wait              Wait for guest(s) to reboot.\n",
        ),
    },
    Spec {
        name: "pause",
        can_dryrun: false,
        modifies: true,
        desc: "Pause execution of a domain",
        usage: "<Domain>",
        options: None,
    },
    Spec {
        name: "unpause",
        can_dryrun: false,
        modifies: true,
        desc: "Unpause a paused domain",
        usage: "<Domain>",
        options: None,
    },
    Spec {
        name: "console",
        can_dryrun: false,
        modifies: false,
        desc: "Attach to domain's console",
        usage: "[options] <Domain>\n\
                -t <type>       console type, pv , serial or vuart\n\
                -n <number>     console number",
        options: None,
    },
    Spec {
        name: "block-attach",
        can_dryrun: true,
        modifies: true,
        desc: "Create a new virtual block device",
        usage: "<Domain> <disk-spec-component(s)>...",
        options: None,
    },
    Spec {
        name: "block-list",
        can_dryrun: false,
        modifies: false,
        desc: "List virtual block devices for a domain",
        usage: "<Domain(s)>",
        options: None,
    },
    Spec {
        name: "block-detach",
        can_dryrun: false,
        modifies: true,
        desc: "Destroy a domain's virtual block device",
        usage: "[-f] <Domain> <DevId>",
        options: Some("-f                      Force detach"),
    },
    Spec {
        name: "network-attach",
        can_dryrun: true,
        modifies: true,
        desc: "Create a new virtual network device",
        usage: "<Domain> [type=<type>] [mac=<mac>] [bridge=<bridge>] \
                [ip=<ip>] [script=<script>] [backend=<BackDomain>] [vifname=<name>] \
                [rate=<rate>] [model=<model>] [accel=<accel>] [mtu=<mtu>]",
        options: None,
    },
    Spec {
        name: "network-list",
        can_dryrun: false,
        modifies: false,
        desc: "List virtual network interfaces for a domain",
        usage: "<Domain(s)>",
        options: None,
    },
    Spec {
        name: "network-detach",
        can_dryrun: false,
        modifies: true,
        desc: "Destroy a domain's virtual network device",
        usage: "<Domain> <DevId|mac>",
        options: None,
    },
    Spec {
        name: "vcpu-list",
        can_dryrun: false,
        modifies: false,
        desc: "List the VCPUs for all/some domains",
        usage: "[Domain, ...]",
        options: None,
    },
    Spec {
        name: "vcpu-pin",
        can_dryrun: true,
        modifies: true,
        desc: "Set which CPUs a VCPU can use",
        usage: "[option] <Domain> <VCPU|all> <Hard affinity|-|all> <Soft affinity|-|all>",
        options: Some(
            "-f, --force        undo an override pinning done by the kernel\n\
             --ignore-global-affinity-masks Ignore global masks in xl.conf",
        ),
    },
    Spec {
        name: "info",
        can_dryrun: false,
        modifies: false,
        desc: "Get information about Xen host",
        usage: "-n, --numa         List host NUMA topology information",
        options: None,
    },
    Spec {
        name: "sched-credit",
        can_dryrun: false,
        modifies: true,
        desc: "Get/set credit scheduler parameters",
        usage: "[-d <Domain> [-w[=WEIGHT]|-c[=CAP]]] [-s [-t TSLICE] [-r RATELIMIT]] [-p CPUPOOL]",
        options: Some(
            "-d DOMAIN, --domain=DOMAIN        Domain to modify\n\
             -w WEIGHT, --weight=WEIGHT        Weight (int)\n\
             -c CAP, --cap=CAP                 Cap (int)\n\
             -s         --schedparam           Query / modify scheduler parameters\n\
             -t TSLICE, --tslice_ms=TSLICE     Set the timeslice, in milliseconds\n\
             -r RLIMIT, --ratelimit_us=RLIMIT  Set the scheduling rate limit, in microseconds\n\
             -m DLY, --migration_delay_us=DLY  Set the migration delay, in microseconds\n\
             -p CPUPOOL, --cpupool=CPUPOOL     Restrict output to CPUPOOL",
        ),
    },
    Spec {
        name: "domid",
        can_dryrun: false,
        modifies: false,
        desc: "Convert a domain name to domain id",
        usage: "<DomainName>",
        options: None,
    },
    Spec {
        name: "domname",
        can_dryrun: false,
        modifies: false,
        desc: "Convert a domain id to domain name",
        usage: "<DomainId>",
        options: None,
    },
    Spec {
        name: "dmesg",
        can_dryrun: false,
        modifies: false,
        desc: "Read and/or clear dmesg buffer",
        usage: "[-c]",
        options: Some("  -c                        Clear dmesg buffer as well as printing it"),
    },
    Spec {
        name: "uptime",
        can_dryrun: false,
        modifies: false,
        desc: "Print uptime for all/some domains",
        usage: "[-s] [Domain]",
        options: None,
    },
];

/// xl subcommands Xen 4.17 has and this toolstack does not (yet): they are recognised
/// (prefixes resolve as in xl) and answered with [`not_yet_message`].
const XL_NOT_YET: &[&str] = &[
    "config-update",
    "pci-attach",
    "pci-detach",
    "pci-list",
    "pci-assignable-add",
    "pci-assignable-remove",
    "pci-assignable-list",
    "vncviewer",
    "save",
    "migrate",
    "restore",
    "migrate-receive",
    "dump-core",
    "cd-insert",
    "cd-eject",
    "mem-max",
    "mem-set",
    "button-press",
    "vcpu-set",
    "vm-list",
    "sharing",
    "sched-credit2",
    "sched-rtds",
    "rename",
    "trigger",
    "sysrq",
    "debug-keys",
    "set-parameters",
    "top",
    "network-attach",
    "network-list",
    "network-detach",
    "channel-list",
    "vtpm-attach",
    "vtpm-list",
    "vtpm-detach",
    "vkb-attach",
    "vkb-list",
    "vkb-detach",
    "vdispl-attach",
    "vdispl-list",
    "vdispl-detach",
    "vsnd-attach",
    "vsnd-list",
    "vsnd-detach",
    "claims",
    "cpupool-create",
    "cpupool-list",
    "cpupool-destroy",
    "cpupool-rename",
    "cpupool-cpu-add",
    "cpupool-cpu-remove",
    "cpupool-migrate",
    "cpupool-numa-split",
    "getenforce",
    "setenforce",
    "loadpolicy",
    "remus",
    "devd",
    "psr-hwinfo",
    "psr-cmt-attach",
    "psr-cmt-detach",
    "psr-cmt-show",
    "psr-cat-set",
    "psr-cat-show",
    "psr-mba-set",
    "psr-mba-show",
    "usbctrl-attach",
    "usbctrl-detach",
    "usbdev-attach",
    "usbdev-detach",
    "usb-list",
    "qemu-monitor-command",
];

/// Xen's other dom0 tools this shell recognises but does not have yet.
/// dom0's network tools ([`Command::NetTool`]).
pub const NET_TOOLS: &[&str] = &["brctl", "ifconfig", "netbench"];

const TOOLS_NOT_YET: &[&str] = &["xenstore-watch", "xentop", "xenconsole"];

/// The message for a recognised command this toolstack does not have yet.
pub fn not_yet_message(command: &str) -> String {
    format!("{command}: not implemented yet in this toolstack\n")
}

/// xl's `cmdtable_lookup` over every xl command: an exact name, or a prefix of exactly one.
fn lookup(s: &str) -> Option<&'static str> {
    let all = TABLE
        .iter()
        .map(|s| s.name)
        .chain(XL_NOT_YET.iter().copied());
    let mut found = None;
    let mut count = 0;
    for name in all {
        if name.starts_with(s) {
            if name.len() == s.len() {
                return Some(name);
            }
            found = Some(name);
            count += 1;
        }
    }
    if count == 1 {
        found
    } else {
        None
    }
}

fn spec(name: &str) -> Option<&'static Spec> {
    TABLE.iter().find(|s| s.name == name)
}

/// The text of `xl help [CMD]` (stdout).
pub fn help(command: Option<&str>) -> String {
    match command {
        None | Some("help") => {
            let mut out = String::from(
                "Usage xl [-vfNtT] <subcommand> [args]\n\nxl full list of subcommands:\n\n",
            );
            for s in TABLE {
                out.push_str(&format!(" {:<19} ", s.name));
                if s.name.len() > 19 {
                    out.push_str(&format!("\n {:<19} ", ""));
                }
                out.push_str(s.desc);
                out.push('\n');
            }
            out
        }
        Some(c) => match lookup(c).and_then(spec) {
            Some(s) => {
                let mut out = format!(
                    "Usage: xl [-vtT{}{}] {} {}\n\n{}.\n\n",
                    if s.modifies { "f" } else { "" },
                    if s.can_dryrun { "N" } else { "" },
                    s.name,
                    s.usage,
                    s.desc
                );
                if let Some(o) = s.options {
                    out.push_str("Options:\n\n");
                    out.push_str(o);
                    out.push('\n');
                }
                out
            }
            None => match lookup(c) {
                Some(n) => not_yet_message(n),
                None => format!("command \"{c}\" not implemented\n"),
            },
        },
    }
}

// ---------------------------------------------------------------------------------------
// Words

/// Splits a shell line into words: blanks separate, `'...'` is literal, `"..."` allows
/// `\"` `\\` `\$` `` \` ``, a backslash outside quotes escapes the next character.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if in_word {
                    words.push(core::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated quoted string".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated quoted string".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated quoted string".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

// ---------------------------------------------------------------------------------------
// getopt_long

struct LongOpt {
    name: &'static str,
    has_arg: bool,
    val: char,
}

const fn lo(name: &'static str, has_arg: bool, val: char) -> LongOpt {
    LongOpt { name, has_arg, val }
}

/// GNU `getopt_long` over `args` (the words after the command), with permutation: returns
/// the options in order and the non-option arguments. `Err(c)` is an unknown option or a
/// missing argument, reported by xl as `option `c' not supported.`
#[allow(clippy::type_complexity)]
fn getopt(
    args: &[String],
    short: &str,
    long: &[LongOpt],
) -> Result<(Vec<(char, Option<String>)>, Vec<String>), String> {
    let takes_arg = |c: char| -> Option<bool> {
        let mut it = short.chars().peekable();
        while let Some(o) = it.next() {
            let colon = it.peek() == Some(&':');
            if colon {
                it.next();
            }
            if o == c {
                return Some(colon);
            }
        }
        None
    };
    let mut opts = Vec::new();
    let mut rest = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        i += 1;
        if a == "--" {
            rest.extend(args.get(i..).unwrap_or(&[]).iter().cloned());
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, val) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let exact = long.iter().find(|l| l.name == name);
            let cands: Vec<&LongOpt> = long.iter().filter(|l| l.name.starts_with(name)).collect();
            let opt = match (exact, cands.as_slice()) {
                (Some(l), _) => l,
                (None, [l]) => *l,
                _ => return Err(format!("--{name}")),
            };
            let val = if opt.has_arg {
                match val {
                    Some(v) => Some(v),
                    None => match args.get(i) {
                        Some(v) => {
                            i += 1;
                            Some(v.clone())
                        }
                        None => return Err(opt.val.to_string()),
                    },
                }
            } else if val.is_some() {
                return Err(opt.val.to_string());
            } else {
                None
            };
            opts.push((opt.val, val));
            continue;
        }
        if a.len() > 1 && a.starts_with('-') {
            let cs = a.char_indices().skip(1);
            for (pos, c) in cs {
                match takes_arg(c) {
                    None => return Err(c.to_string()),
                    Some(false) => opts.push((c, None)),
                    Some(true) => {
                        let attached = a.get(pos + c.len_utf8()..).unwrap_or("");
                        let v = if !attached.is_empty() {
                            attached.to_string()
                        } else if let Some(v) = args.get(i) {
                            i += 1;
                            v.clone()
                        } else {
                            return Err(c.to_string());
                        };
                        opts.push((c, Some(v)));
                        break;
                    }
                }
            }
            continue;
        }
        rest.push(a.clone());
    }
    Ok((opts, rest))
}

/// C's `strtol(s, NULL, 10)`: leading number, 0 if none (xl does not check).
fn strtol10(s: &str) -> i64 {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, t.get(1..).unwrap_or("")),
        Some(b'+') => (false, t.get(1..).unwrap_or("")),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for c in t.bytes().take_while(u8::is_ascii_digit) {
        v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    if neg {
        -v
    } else {
        v
    }
}

fn unsupported(c: &str) -> Failure {
    Failure::err(format!("option `{c}' not supported.\n"), 2)
}

fn need_args(cmd: &str, n: usize) -> Failure {
    Failure {
        stdout: help(Some(cmd)),
        stderr: format!(
            "'xl {}' requires at least {} argument{}.\n\n",
            cmd,
            n,
            if n > 1 { "s" } else { "" }
        ),
        status: 2,
    }
}

/// Options and operands.
type Opts = (Vec<(char, Option<String>)>, Vec<String>);

/// Runs getopt for `cmd` with xl's `SWITCH_FOREACH_OPT` rules (`-h`/`--help` prints the
/// usage; fewer than `required` arguments is an error).
fn opts_for(
    cmd: &str,
    args: &[String],
    short: &str,
    long: &[LongOpt],
    required: usize,
) -> Result<Opts, Failure> {
    let mut all_short = String::from("h");
    all_short.push_str(short);
    let mut all_long: Vec<LongOpt> = long.iter().map(|l| lo(l.name, l.has_arg, l.val)).collect();
    all_long.push(lo("help", false, 'h'));
    let (opts, rest) = getopt(args, &all_short, &all_long).map_err(|c| {
        if c == "h" {
            Failure {
                stdout: help(Some(cmd)),
                stderr: String::new(),
                status: 0,
            }
        } else {
            unsupported(&c)
        }
    })?;
    if opts.iter().any(|(c, _)| *c == 'h') {
        return Err(Failure {
            stdout: help(Some(cmd)),
            stderr: String::new(),
            status: 0,
        });
    }
    if rest.len() < required {
        return Err(need_args(cmd, required));
    }
    Ok((opts, rest))
}

fn has(opts: &[(char, Option<String>)], c: char) -> bool {
    opts.iter().any(|(o, _)| *o == c)
}

fn last_arg(opts: &[(char, Option<String>)], c: char) -> Option<String> {
    opts.iter()
        .rev()
        .find(|(o, _)| *o == c)
        .and_then(|(_, v)| v.clone())
}

/// Parses a line typed at the dom0 shell: `xl [global options] COMMAND ARGS...`, or a
/// bare `COMMAND ARGS...`, or one of Xen's other tools (`xenstore-ls`...).
pub fn parse_line(line: &str) -> Parsed {
    let words = match split_words(line) {
        Ok(w) => w,
        Err(e) => return Parsed::Print(Failure::err(format!("{e}\n"), 1)),
    };
    if words.is_empty() {
        return Parsed::Empty;
    }
    let (first, rest) = match words.split_first() {
        Some(x) => x,
        None => return Parsed::Empty,
    };
    if first == "xl" {
        return parse_xl(rest);
    }
    if first == "xenctx" {
        return parse_xenctx(rest);
    }
    if first == "blkdev" {
        return Parsed::Run(Command::Blkdev {
            args: rest.to_vec(),
        });
    }
    if NET_TOOLS.contains(&first.as_str()) {
        return Parsed::Run(Command::NetTool {
            tool: first.clone(),
            args: rest.to_vec(),
        });
    }
    if first == "bench-create" {
        let usage = "usage: bench-create <ConfigFile> [ROUNDS]\n";
        let rounds = match rest.get(1).map(|r| r.parse::<u32>()) {
            None => 5,
            Some(Ok(n)) if (1..=1000).contains(&n) => n,
            Some(_) => return Parsed::Print(Failure::err(usage, 2)),
        };
        return match rest.first() {
            Some(f) if rest.len() <= 2 => Parsed::Run(Command::BenchCreate {
                config_file: f.clone(),
                rounds,
            }),
            _ => Parsed::Print(Failure::err(usage, 2)),
        };
    }
    if let Some(tool) = first.strip_prefix("xenstore-") {
        if XENSTORE_TOOLS.contains(&tool) {
            return parse_xenstore(tool, rest);
        }
    }
    if TOOLS_NOT_YET.contains(&first.as_str()) {
        return Parsed::Run(Command::NotYet {
            command: first.clone(),
        });
    }
    parse_xl(&words)
}

/// The `xenstore-*` tools this shell has.
const XENSTORE_TOOLS: &[&str] = &["ls", "read", "write", "rm", "list", "exists", "chmod"];

/// `xenstore-TOOL [-opts] ARGS`: options first, as Xen's `xenstore_client` takes them
/// (`ls`: `-f` full paths, `-p` permissions; `rm`: `-t` remove empty parents too;
/// `read`/`list`: `-p` prefix, `-s`/`-R` accepted).
fn parse_xenstore(tool: &str, words: &[String]) -> Parsed {
    let usage = match tool {
        "ls" => "Usage: xenstore-ls [-h] [-f] [-p] [-s] [path]\n",
        "read" => "Usage: xenstore-read [-h] [-p] [-s] [-R] key [...]\n",
        "write" => "Usage: xenstore-write [-h] [-s] [-R] key value [...]\n",
        "rm" => "Usage: xenstore-rm [-h] [-s] [-t] key [...]\n",
        "list" => "Usage: xenstore-list [-h] [-p] [-s] key [...]\n",
        "exists" => "Usage: xenstore-exists [-h] [-s] key [...]\n",
        _ => "Usage: xenstore-chmod [-h] [-s] [-r] key <mode [modes...]>\n",
    };
    let mut flags = String::new();
    let mut args = Vec::new();
    for w in words {
        match w.strip_prefix('-') {
            Some(o) if args.is_empty() && !o.is_empty() => {
                for c in o.chars() {
                    if c == 'h' {
                        return Parsed::Print(Failure {
                            stdout: usage.into(),
                            stderr: String::new(),
                            status: 0,
                        });
                    }
                    if !"fpsRtr".contains(c) {
                        return Parsed::Print(Failure::err(usage, 1));
                    }
                    flags.push(c);
                }
            }
            _ => args.push(w.clone()),
        }
    }
    let ok = match tool {
        "ls" => args.len() <= 1,
        "write" => !args.is_empty() && args.len() % 2 == 0,
        "chmod" => args.len() >= 2,
        _ => !args.is_empty(),
    };
    if !ok {
        return Parsed::Print(Failure::err(usage, 1));
    }
    Parsed::Run(Command::Xenstore {
        tool: tool.into(),
        flags,
        args,
    })
}

/// `xenctx`'s usage line (its `usage()`, first line).
pub const XENCTX_USAGE: &str = "usage: xenctx [options] <DOMAIN> [VCPU]\n";

/// `xenctx [-a|--all] <DOMID> [VCPU]`.
fn parse_xenctx(words: &[String]) -> Parsed {
    let mut all = false;
    let mut pos = Vec::new();
    for w in words {
        match w.as_str() {
            "-a" | "--all" => all = true,
            "-h" | "--help" => {
                return Parsed::Print(Failure {
                    stdout: XENCTX_USAGE.into(),
                    stderr: String::new(),
                    status: 0,
                })
            }
            o if o.starts_with('-') && o.len() > 1 => {
                return Parsed::Print(Failure::err(
                    format!("xenctx: unrecognized option '{o}'\n{XENCTX_USAGE}"),
                    2,
                ))
            }
            _ => pos.push(w.clone()),
        }
    }
    let (Some(domid), rest) = (pos.first(), pos.get(1..).unwrap_or(&[])) else {
        return Parsed::Print(Failure::err(XENCTX_USAGE, 2));
    };
    let vcpu = match rest {
        [] => 0,
        [v] => match v.parse::<u32>() {
            Ok(v) => v,
            Err(_) => return Parsed::Print(Failure::err(format!("xenctx: bad vcpu '{v}'\n"), 2)),
        },
        _ => return Parsed::Print(Failure::err(XENCTX_USAGE, 2)),
    };
    Parsed::Run(Command::Xenctx {
        domid: domid.clone(),
        vcpu,
        all,
    })
}

/// Parses `xl`'s arguments (the words after `xl`).
pub fn parse_xl(words: &[String]) -> Parsed {
    // Global options, up to the command (getopt "+vftTN").
    let mut dryrun = false;
    let mut i = 0;
    while let Some(w) = words.get(i) {
        if !w.starts_with('-') || w == "-" {
            break;
        }
        i += 1;
        if w == "--" {
            break;
        }
        for c in w.chars().skip(1) {
            match c {
                'v' | 'f' | 't' | 'T' => {}
                'N' => dryrun = true,
                _ => return Parsed::Print(Failure::err("unknown global option\n", 1)),
            }
        }
    }
    let Some(cmd) = words.get(i) else {
        return Parsed::Print(Failure {
            stdout: help(None),
            stderr: String::new(),
            status: 1,
        });
    };
    let args = words.get(i + 1..).unwrap_or(&[]);
    let Some(name) = lookup(cmd) else {
        if cmd == "help" {
            return Parsed::Run(Command::Help {
                command: args.first().cloned(),
            });
        }
        return Parsed::Print(Failure::err("command not implemented\n", 1));
    };
    if dryrun && !spec(name).is_some_and(|s| s.can_dryrun) {
        return Parsed::Print(Failure::err(
            "command does not implement -N (dryrun) option\n",
            1,
        ));
    }
    let r = parse_command(name, args, dryrun);
    match r {
        Ok(c) => Parsed::Run(c),
        Err(f) => Parsed::Print(f),
    }
}

fn parse_command(name: &'static str, args: &[String], dryrun: bool) -> Result<Command, Failure> {
    let one = |rest: &[String]| rest.first().cloned().unwrap_or_default();
    Ok(match name {
        "list" => {
            let (o, rest) = opts_for(
                name,
                args,
                "lvZcn",
                &[
                    lo("long", false, 'l'),
                    lo("verbose", false, 'v'),
                    lo("context", false, 'Z'),
                    lo("cpupool", false, 'c'),
                    lo("numa", false, 'n'),
                ],
                0,
            )?;
            if rest.len() > 1 {
                return Err(Failure {
                    stdout: help(Some("list")),
                    stderr: String::new(),
                    status: 1,
                });
            }
            Command::List {
                long: has(&o, 'l'),
                verbose: has(&o, 'v'),
                context: has(&o, 'Z'),
                cpupool: has(&o, 'c'),
                numa: has(&o, 'n'),
                domain: rest.first().cloned(),
            }
        }
        "create" => {
            // xl takes a first argument that is neither an option nor KEY=VALUE as the
            // config file before option processing.
            let (mut config_file, args) = match args.split_first() {
                Some((f, r)) if !f.starts_with('-') && !f.contains('=') => (Some(f.clone()), r),
                _ => (None, args),
            };
            let (o, rest) = opts_for(
                name,
                args,
                "AFVcdef:inpq",
                &[
                    lo("defconfig", true, 'f'),
                    lo("dryrun", false, 'n'),
                    lo("ignore-global-affinity-masks", false, 'i'),
                    lo("quiet", false, 'q'),
                    lo("vncviewer", false, 'V'),
                    lo("vncviewer-autopass", false, 'A'),
                ],
                0,
            )?;
            if let Some(f) = last_arg(&o, 'f') {
                config_file = Some(f);
            }
            let mut overrides = Vec::new();
            for a in rest {
                if a.contains('=') {
                    overrides.push(a);
                } else if config_file.is_none() {
                    config_file = Some(a);
                } else {
                    return Err(Failure {
                        stdout: help(Some("create")),
                        stderr: String::new(),
                        status: 2,
                    });
                }
            }
            Command::Create {
                config_file,
                overrides,
                console: has(&o, 'c'),
                paused: has(&o, 'p'),
                quiet: has(&o, 'q'),
                dryrun: dryrun || has(&o, 'n'),
                debug: has(&o, 'd'),
            }
        }
        "destroy" => {
            let (o, rest) = opts_for(name, args, "f", &[], 1)?;
            Command::Destroy {
                domain: one(&rest),
                force: has(&o, 'f'),
            }
        }
        "shutdown" | "reboot" => {
            let (o, rest) = opts_for(
                name,
                args,
                "awF",
                &[lo("all", false, 'a'), lo("wait", false, 'w')],
                0,
            )?;
            let target = if has(&o, 'a') {
                Target::All
            } else if let Some(d) = rest.first() {
                Target::Domain(d.clone())
            } else {
                return Err(Failure::err("You must specify -a or a domain id.\n\n", 1));
            };
            let (wait, fallback) = (has(&o, 'w'), has(&o, 'F'));
            if name == "shutdown" {
                Command::Shutdown {
                    target,
                    wait,
                    fallback,
                }
            } else {
                Command::Reboot {
                    target,
                    wait,
                    fallback,
                }
            }
        }
        "pause" => {
            let (_, rest) = opts_for(name, args, "", &[], 1)?;
            Command::Pause { domain: one(&rest) }
        }
        "unpause" => {
            let (_, rest) = opts_for(name, args, "", &[], 1)?;
            Command::Unpause { domain: one(&rest) }
        }
        "console" => {
            let (o, rest) = opts_for(name, args, "n:t:", &[], 1)?;
            let mut kind = None;
            let mut num = 0;
            for (c, v) in &o {
                let v = v.clone().unwrap_or_default();
                match c {
                    't' => {
                        kind = Some(match v.as_str() {
                            "pv" => ConsoleType::Pv,
                            "serial" => ConsoleType::Serial,
                            "vuart" => ConsoleType::Vuart,
                            _ => {
                                return Err(Failure::err(
                                    "console type supported are: pv, serial, vuart\n",
                                    1,
                                ))
                            }
                        })
                    }
                    'n' => {
                        num = strtol10(&v).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
                    }
                    _ => {}
                }
            }
            Command::Console {
                domain: one(&rest),
                kind,
                num,
            }
        }
        "info" => {
            let (o, rest) = opts_for(name, args, "n", &[lo("numa", false, 'n')], 0)?;
            let numa = has(&o, 'n');
            Command::Info {
                numa,
                item: if numa { None } else { rest.first().cloned() },
            }
        }
        "dmesg" => {
            let (o, _) = opts_for(name, args, "c", &[lo("clear", false, 'c')], 0)?;
            Command::Dmesg {
                clear: has(&o, 'c'),
            }
        }
        "block-attach" => {
            let (_, rest) = opts_for(name, args, "", &[], 2)?;
            let (domain, spec) = rest
                .split_first()
                .map(|(d, s)| (d.clone(), s.to_vec()))
                .unwrap_or_default();
            Command::BlockAttach { domain, spec }
        }
        "block-list" => {
            let (_, rest) = opts_for(name, args, "", &[], 1)?;
            Command::BlockList { domains: rest }
        }
        "block-detach" => {
            let (o, rest) = opts_for(name, args, "f", &[lo("force", false, 'f')], 2)?;
            Command::BlockDetach {
                domain: rest.first().cloned().unwrap_or_default(),
                dev: rest.get(1).cloned().unwrap_or_default(),
                force: o.iter().any(|(c, _)| *c == 'f'),
            }
        }
        "network-attach" => {
            let (_, rest) = opts_for(name, args, "", &[], 1)?;
            let (domain, spec) = rest
                .split_first()
                .map(|(d, s)| (d.clone(), s.to_vec()))
                .unwrap_or_default();
            Command::NetworkAttach { domain, spec }
        }
        "network-list" => {
            let (_, rest) = opts_for(name, args, "", &[], 1)?;
            Command::NetworkList { domains: rest }
        }
        "network-detach" => {
            let (_, rest) = opts_for(name, args, "", &[], 2)?;
            Command::NetworkDetach {
                domain: rest.first().cloned().unwrap_or_default(),
                dev: rest.get(1).cloned().unwrap_or_default(),
            }
        }
        "vcpu-list" => {
            let (_, rest) = opts_for(name, args, "", &[], 0)?;
            Command::VcpuList { domains: rest }
        }
        "vcpu-pin" => {
            let (o, rest) = opts_for(
                name,
                args,
                "fi",
                &[
                    lo("force", false, 'f'),
                    lo("ignore-global-affinity-masks", false, 'i'),
                ],
                3,
            )?;
            let force = has(&o, 'f');
            let (Some(domain), Some(vcpu), Some(hard)) = (rest.first(), rest.get(1), rest.get(2))
            else {
                return Err(need_args(name, 3));
            };
            let digits = vcpu.trim_start().trim_start_matches(['+', '-']);
            let vcpu_sel = if !digits.is_empty()
                && digits.bytes().next().is_some_and(|c| c.is_ascii_digit())
                && !vcpu.trim_start().starts_with('-')
            {
                VcpuSel::Id(u32::try_from(strtol10(vcpu)).unwrap_or(u32::MAX))
            } else if vcpu == "all" {
                if force {
                    return Err(Failure::err(
                        "Error: --force and 'all' as VCPU not allowed.\n",
                        1,
                    ));
                }
                VcpuSel::All
            } else {
                return Err(Failure::err(
                    format!("Error: Invalid argument {vcpu} as VCPU.\n"),
                    1,
                ));
            };
            let spec = |s: Option<&String>| match s {
                None => PinSpec::Keep,
                Some(s) if s == "-" => PinSpec::Keep,
                Some(s) => PinSpec::Cpus(s.clone()),
            };
            Command::VcpuPin {
                domain: domain.clone(),
                vcpu: vcpu_sel,
                hard: spec(Some(hard)),
                soft: spec(rest.get(3)),
                force,
            }
        }
        "sched-credit" => {
            let (o, _) = opts_for(
                name,
                args,
                "d:w:c:p:t:r:m:s",
                &[
                    lo("domain", true, 'd'),
                    lo("weight", true, 'w'),
                    lo("cap", true, 'c'),
                    lo("schedparam", false, 's'),
                    lo("tslice_ms", true, 't'),
                    lo("ratelimit_us", true, 'r'),
                    lo("migration_delay_us", true, 'm'),
                    lo("cpupool", true, 'p'),
                ],
                0,
            )?;
            let num = |c: char| last_arg(&o, c).map(|v| strtol10(&v));
            let domain = last_arg(&o, 'd');
            let cpupool = last_arg(&o, 'p');
            let (weight, cap) = (num('w'), num('c'));
            let (tslice_ms, ratelimit_us, migration_delay_us) = (num('t'), num('r'), num('m'));
            let schedparam = has(&o, 's');
            if (cpupool.is_some() || schedparam)
                && (domain.is_some() || weight.is_some() || cap.is_some())
            {
                return Err(Failure::err(
                    "Specifying a cpupool or schedparam is not allowed with domain options.\n",
                    1,
                ));
            }
            if domain.is_none() && (weight.is_some() || cap.is_some()) {
                return Err(Failure::err("Must specify a domain.\n", 1));
            }
            if !schedparam
                && (tslice_ms.is_some() || ratelimit_us.is_some() || migration_delay_us.is_some())
            {
                return Err(Failure::err(
                    "Must specify schedparam to set schedule parameter values.\n",
                    1,
                ));
            }
            Command::SchedCredit {
                domain,
                weight,
                cap,
                schedparam,
                tslice_ms,
                ratelimit_us,
                migration_delay_us,
                cpupool,
            }
        }
        "uptime" => {
            let (o, rest) = opts_for(name, args, "s", &[], 0)?;
            Command::Uptime {
                short: has(&o, 's'),
                domains: rest,
            }
        }
        "domid" => {
            let (_, rest) = opts_for(name, args, "", &[], 1)?;
            Command::Domid { name: one(&rest) }
        }
        "domname" => {
            let (_, rest) = opts_for(name, args, "", &[], 1)?;
            Command::Domname { domid: one(&rest) }
        }
        other => Command::NotYet {
            command: other.to_string(),
        },
    })
}
