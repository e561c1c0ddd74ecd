//! The `xl` shell: runs parsed command lines against the hypervisor, keeps the domains
//! this toolstack created (name, config, console), and reacts to domains shutting down
//! as xl's per-domain daemon does (`on_poweroff`/`on_reboot`/`on_crash`).

use crate::blkback::Blkback;
use crate::builder;
use crate::console::Console;
use crate::xenstored::Xenstored;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use dom0_tools::archive;
use dom0_tools::cfg::{self, Action, CpuSet, DomainConfig};
use dom0_tools::fmt as xfmt;
use dom0_tools::shell::{self, Shell};
use dom0_tools::xl::{self, Command, DomainResolver, Parsed, Target};
use guest_sdk::console::{c_str, write_bytes};
use guest_sdk::privileged as p;
use guest_sdk::Errno;
use xen_abi::domctl::*;
use xen_abi::errno::EAGAIN;

const PROMPT: &str = "xl> ";

/// A domain this toolstack created.
#[derive(Debug)]
pub struct Dom {
    name: String,
    path: String,
    overrides: Vec<String>,
    cfg: DomainConfig,
    console: Option<Console>,
    created_ns: u64,
    /// TSC when its first console output was seen (`bench-create`).
    first_output_tsc: Option<u64>,
}

/// dom0's toolstack state.
pub struct Dom0 {
    ramdisk: &'static [u8],
    doms: BTreeMap<u32, Dom>,
    shell: Shell,
    xs: Xenstored,
    blk: Blkback,
    disks: crate::disk::Disks,
    net: crate::net::Net,
}

fn out(s: &str) {
    write_bytes(s.as_bytes());
}

fn now_ns() -> u64 {
    guest_sdk::time::system_time_ns()
}

fn errno_rc(e: Errno) -> String {
    format!("{e:?}")
}

struct Names<'a>(&'a BTreeMap<u32, Dom>);

impl DomainResolver for Names<'_> {
    fn domid_by_name(&self, name: &str) -> Option<u32> {
        if name == "Domain-0" {
            return Some(0);
        }
        self.0
            .iter()
            .find(|(_, d)| d.name == name)
            .map(|(id, _)| *id)
    }
}

fn all_domains() -> Vec<XenDomctlGetdomaininfo> {
    let mut buf = alloc::vec![XenDomctlGetdomaininfo::default(); 64];
    let mut all = Vec::new();
    let mut first = 0u16;
    loop {
        match p::getdomaininfolist(first, &mut buf) {
            Ok(n) if n > 0 => {
                let got = buf.get(..n).unwrap_or(&[]);
                all.extend_from_slice(got);
                match got.last() {
                    Some(l) if n == buf.len() => first = l.domain.saturating_add(1),
                    _ => break,
                }
            }
            _ => break,
        }
    }
    all
}

fn cpuset(bytes: &[u8]) -> CpuSet {
    let mut s = CpuSet::none();
    for (i, b) in bytes.iter().enumerate() {
        for bit in 0..8 {
            if b & (1 << bit) != 0 {
                s.set(i * 8 + bit);
            }
        }
    }
    s
}

impl Dom0 {
    /// The toolstack over the ramdisk's files.
    pub fn new(ramdisk: &'static [u8]) -> Dom0 {
        let disks = crate::disk::Disks::probe();
        let net = crate::net::Net::new(&disks);
        Dom0 {
            ramdisk,
            doms: BTreeMap::new(),
            shell: Shell::new(PROMPT),
            xs: Xenstored::new(),
            blk: Blkback::new(),
            disks,
            net,
        }
    }

    /// A vif's event, the NIC's interrupt or the network timer: move packets.
    pub fn net_event(&mut self) {
        if self.net.pump() {
            self.net.poll_store(&mut self.xs);
            self.xs.poll();
        }
    }

    /// A disk's pirq event fired: acknowledge, complete, EOI (`disk.rs`).
    pub fn disk_event(&mut self) {
        self.disks.interrupt();
    }

    /// A store or disk channel fired: serve the domains' XenStore requests, then let
    /// blkback follow the frontends' states and serve their rings.
    pub fn poll_store(&mut self) {
        self.xs.poll();
        self.blk.poll(&mut self.xs);
        self.net.poll_store(&mut self.xs);
        // The backends' own store writes may have queued watch events for guests.
        self.xs.poll();
    }

    /// Write a new domain's XenStore entries as libxl does (`libxl__domain_make` and the
    /// build's `libxl__build_post`), then introduce it to xenstored. Entries the guest may
    /// write (`control`, `data`, `device` frontends) are its own; the rest it may only
    /// read.
    fn store_domain(
        &mut self,
        id: u32,
        dc: &DomainConfig,
        b: &builder::Built,
    ) -> Result<(), String> {
        let dom = dom0_tools::xenstore::domain_path(id);
        let vm = format!("/vm/{}", xfmt::uuid_string(&b.handle));
        let ro = [String::from("n0"), format!("r{id}")];
        let rw = [format!("n{id}")];
        let ro: Vec<&str> = ro.iter().map(String::as_str).collect();
        let rw: Vec<&str> = rw.iter().map(String::as_str).collect();
        let xs = &mut self.xs;
        let e = |r: Result<(), String>, what: &str| r.map_err(|err| format!("{what}: {err}"));
        for path in [dom.clone(), vm.clone()] {
            e(xs.mkdir(&path), &path)?;
            e(xs.set_perms(&path, &ro), &path)?;
        }
        let entries: Vec<(String, String)> = alloc::vec![
            (format!("{vm}/name"), dc.name.clone()),
            (format!("{vm}/uuid"), xfmt::uuid_string(&b.handle)),
            (format!("{dom}/vm"), vm.clone()),
            (format!("{dom}/name"), dc.name.clone()),
            (format!("{dom}/domid"), format!("{id}")),
            (
                format!("{dom}/memory/static-max"),
                format!("{}", dc.max_memkb)
            ),
            (
                format!("{dom}/memory/target"),
                format!("{}", dc.target_memkb)
            ),
            (format!("{dom}/store/port"), format!("{}", b.store_port)),
            (format!("{dom}/store/ring-ref"), format!("{}", b.store_mfn)),
            (format!("{dom}/console/port"), format!("{}", b.console_port)),
            (
                format!("{dom}/console/ring-ref"),
                format!("{}", b.console_mfn)
            ),
            (format!("{dom}/console/limit"), String::from("1048576")),
            (format!("{dom}/console/type"), String::from("xenconsoled")),
        ];
        for (path, value) in &entries {
            e(xs.write(path, value.as_bytes()), path)?;
        }
        for v in 0..dc.max_vcpus.max(1) {
            let state = if v < dc.vcpus.max(1) {
                "online"
            } else {
                "offline"
            };
            let path = format!("{dom}/cpu/{v}/availability");
            e(xs.write(&path, state.as_bytes()), &path)?;
        }
        for sub in ["device", "control"] {
            let path = format!("{dom}/{sub}");
            e(xs.mkdir(&path), &path)?;
        }
        for sub in [
            "data",
            "drivers",
            "feature",
            "attr",
            "error",
            "control/shutdown",
        ] {
            let path = format!("{dom}/{sub}");
            e(xs.write(&path, b""), &path)?;
            e(xs.set_perms(&path, &rw), &path)?;
        }
        e(xs.introduce(id, b.store_mfn, b.store_port), "introduce")
    }

    /// The `xenstore-*` tools, as dom0 (which may read and write everything).
    fn xenstore(&mut self, tool: &str, flags: &str, args: &[String]) {
        let xs = &mut self.xs;
        let prefix = flags.contains('p');
        match tool {
            "ls" => {
                let path = args.first().map_or("/", String::as_str);
                match xfmt::xenstore_ls(xs, path, flags.contains('f'), prefix) {
                    Ok(o) => out(&o),
                    Err(e) => out(&format!(
                        "xenstore-ls: xs_directory ({path}): {}\n",
                        strerror(&e)
                    )),
                }
            }
            "read" => {
                for path in args {
                    match xs.read(path) {
                        Ok(v) if prefix => {
                            out(&format!("{path}: {}\n", String::from_utf8_lossy(&v)))
                        }
                        Ok(v) => out(&format!("{}\n", String::from_utf8_lossy(&v))),
                        Err(_) => {
                            return out(&format!("xenstore-read: couldn't read path {path}\n"))
                        }
                    }
                }
            }
            "exists" => {
                for path in args {
                    if xs.read(path).is_err() {
                        return out(&format!(
                            "xenstore-exists: {path}: No such file or directory\n"
                        ));
                    }
                }
            }
            "list" => {
                for path in args {
                    match xs.directory(path) {
                        Ok(children) => {
                            for c in children {
                                if prefix {
                                    out(&format!("{}/{c}\n", path.trim_end_matches('/')));
                                } else {
                                    out(&format!("{c}\n"));
                                }
                            }
                        }
                        Err(_) => {
                            return out(&format!("xenstore-list: couldn't list path {path}\n"))
                        }
                    }
                }
            }
            "write" => {
                for pair in args.chunks(2) {
                    if let [path, value] = pair {
                        if xs.write(path, value.as_bytes()).is_err() {
                            return out(&format!("xenstore-write: could not write path {path}\n"));
                        }
                    }
                }
            }
            "rm" => {
                for path in args {
                    match xs.rm(path) {
                        Ok(()) => {}
                        Err(e) if e == "ENOENT" => {}
                        Err(_) => {
                            return out(&format!("xenstore-rm: could not remove path {path}\n"))
                        }
                    }
                }
            }
            _ => {
                // chmod PATH PERM...
                let Some((path, modes)) = args.split_first() else {
                    return;
                };
                let modes: Vec<&str> = modes.iter().map(String::as_str).collect();
                if xs.set_perms(path, &modes).is_err() {
                    out(&format!(
                        "xenstore-chmod: could not set permissions on path {path}\n"
                    ));
                }
            }
        }
    }

    /// The domain is gone: release it from xenstored and remove its entries.
    fn unstore_domain(&mut self, id: u32) {
        if self.xs.is_introduced(id) {
            let _ = self.xs.release(id);
        }
        let dom = dom0_tools::xenstore::domain_path(id);
        if let Ok(vm) = self.xs.read(&format!("{dom}/vm")) {
            let vm = String::from_utf8_lossy(&vm).into_owned();
            if vm.starts_with("/vm/") {
                let _ = self.xs.rm(&vm);
            }
        }
        let _ = self.xs.rm(&dom);
    }

    /// The boot banner.
    pub fn banner(&self) {
        let (maj, min) = guest_sdk::version::version().unwrap_or((0, 0));
        out(&format!(
            "\ndom0: control domain up on Xen {maj}.{min}; ramdisk {} bytes; heap {} KiB free\n",
            self.ramdisk.len(),
            guest_sdk::heap::usage().1 >> 10
        ));
        match archive::list(self.ramdisk) {
            Ok(files) => {
                for f in files {
                    out(&format!("dom0:   /{f}\n"));
                }
            }
            Err(e) => out(&format!("dom0: ramdisk: {e}\n")),
        }
        out("dom0: type `help' for the xl commands; Ctrl-] leaves a guest console\n");
    }

    /// Prints the prompt.
    pub fn prompt(&self) {
        write_bytes(&self.shell.prompt());
    }

    /// Reads and handles console input.
    pub fn read_input(&mut self) {
        let mut buf = [0u8; 128];
        for _ in 0..64 {
            let n = match guest_sdk::hypercall::console_read(&mut buf) {
                Ok(n) if n > 0 => n,
                _ => return,
            };
            self.feed(buf.get(..n).unwrap_or(&[]));
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        let mut actions = self.shell.feed(bytes);
        loop {
            for a in actions {
                match a {
                    shell::Action::Echo(b) => write_bytes(&b),
                    shell::Action::Run(line) => {
                        self.run(&line);
                        if self.shell.attached().is_none() {
                            self.prompt();
                        }
                    }
                    shell::Action::ToGuest { domid, bytes } => {
                        if let Some(c) = self.doms.get_mut(&domid).and_then(|d| d.console.as_mut())
                        {
                            c.input(&bytes);
                        }
                    }
                    shell::Action::Detached { .. } => {}
                }
            }
            if !self.shell.pending() {
                break;
            }
            actions = self.shell.feed(&[]);
        }
    }

    /// Moves every domU's new console output to its log, or to the screen if attached.
    pub fn poll_consoles(&mut self) {
        let attached = self.shell.attached();
        let mut buf = Vec::new();
        for (id, d) in self.doms.iter_mut() {
            let Some(c) = d.console.as_mut() else {
                continue;
            };
            // Bounded: a guest that keeps writing cannot starve the shell.
            for _ in 0..8 {
                buf.clear();
                if !c.drain(&mut buf) {
                    break;
                }
                if d.first_output_tsc.is_none() && !buf.is_empty() {
                    d.first_output_tsc = Some(guest_sdk::time::rdtsc());
                }
                if attached == Some(*id) {
                    write_bytes(&buf);
                } else {
                    c.log.push(&buf);
                }
            }
        }
    }

    /// VIRQ_DOM_EXC: apply the configured action to domains that shut down.
    pub fn domain_exceptions(&mut self) {
        let infos = all_domains();
        let ids: Vec<u32> = self.doms.keys().copied().collect();
        for id in ids {
            let info = infos.iter().find(|i| u32::from(i.domain) == id);
            let Some(info) = info else {
                // Gone (destroyed behind our back).
                self.forget(id);
                continue;
            };
            let Some(code) = info.shutdown_code() else {
                continue;
            };
            self.xs.domain_shutdown(id);
            let Some(d) = self.doms.get(&id) else {
                continue;
            };
            let action = match code {
                0 => d.cfg.on_poweroff,
                1 => d.cfg.on_reboot,
                2 => continue, // suspend: nothing to do without save/restore
                3 => d.cfg.on_crash,
                4 => d.cfg.on_watchdog,
                _ => d.cfg.on_soft_reset,
            };
            let reason = [
                "poweroff",
                "reboot",
                "suspend",
                "crash",
                "watchdog",
                "soft_reset",
            ]
            .get(code as usize)
            .copied()
            .unwrap_or("unknown");
            let name = d.name.clone();
            if action == Action::Preserve {
                continue;
            }
            if self.shell.attached() == Some(id) {
                for a in self.shell.detach() {
                    if let shell::Action::Echo(b) = a {
                        write_bytes(&b);
                    }
                }
            }
            out(&format!(
                "\nxl: domain {id} ({name}) has shut down, reason code {code} ({reason}): {}\n",
                action.cfg_name()
            ));
            let restart = matches!(
                action,
                Action::Restart | Action::RenameRestart | Action::CoredumpRestart
            );
            let again = self
                .doms
                .get(&id)
                .map(|d| (d.path.clone(), d.overrides.clone()));
            self.destroy(id);
            if let (true, Some((path, ov))) = (restart, again) {
                self.create(&path, &ov, false, false);
            }
            if self.shell.attached().is_none() {
                self.prompt();
                write_bytes(self.shell.line());
            }
        }
    }

    fn forget(&mut self, id: u32) {
        if let Some(d) = self.doms.remove(&id) {
            if let Some(c) = d.console {
                c.disconnect();
            }
        }
    }

    fn destroy(&mut self, id: u32) -> Option<Errno> {
        self.forget(id);
        if let Ok(dom) = u16::try_from(id) {
            self.blk.remove_domain(&mut self.xs, dom);
            self.net.remove_domain(&mut self.xs, dom);
        }
        self.unstore_domain(id);
        let mut res = None;
        for _ in 0..1000 {
            match p::destroydomain(id as u16) {
                Err(e) if e == EAGAIN => continue,
                Err(e) => {
                    res = Some(e);
                    break;
                }
                Ok(()) => break,
            }
        }
        res
    }

    fn file(&self, path: &str) -> Option<&'static [u8]> {
        match archive::find(self.ramdisk, path) {
            Ok(Some(e)) => Some(e.data),
            _ => None,
        }
    }

    fn run(&mut self, line: &str) {
        match xl::parse_line(line) {
            Parsed::Empty => {}
            Parsed::Print(f) => {
                out(&f.stdout);
                out(&f.stderr);
            }
            Parsed::Run(cmd) => self.command(cmd),
        }
    }

    fn find(&self, arg: &str) -> Result<u32, String> {
        Names(&self.doms).find_domain(arg)
    }

    fn name_of(&self, id: u32) -> String {
        if id == 0 {
            return "Domain-0".into();
        }
        self.doms
            .get(&id)
            .map(|d| d.name.clone())
            .unwrap_or_else(|| "(null)".into())
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::List { long, verbose, context, domain, .. } => {
                let mut infos = all_domains();
                if let Some(arg) = domain {
                    let id = match self.find(&arg) {
                        Ok(id) => id,
                        Err(e) => return out(&format!("{e}\n")),
                    };
                    infos.retain(|i| u32::from(i.domain) == id);
                    if infos.is_empty() {
                        return out(&format!("Error: Domain '{arg}' does not exist.\n"));
                    }
                }
                if long {
                    return self.list_long(&infos);
                }
                let doms: Vec<xfmt::DomainInfo> = infos
                    .iter()
                    .map(|i| xfmt::DomainInfo {
                        domid: u32::from(i.domain),
                        name: self.name_of(u32::from(i.domain)),
                        uuid: i.handle,
                        current_memkb: i.tot_pages * 4,
                        outstanding_memkb: i.outstanding_pages * 4,
                        vcpu_online: i.nr_online_vcpus,
                        running: i.flags & XEN_DOMINF_RUNNING != 0,
                        blocked: i.flags & XEN_DOMINF_BLOCKED != 0,
                        paused: i.flags & XEN_DOMINF_PAUSED != 0,
                        shutdown: i.flags & XEN_DOMINF_SHUTDOWN != 0,
                        shutdown_reason: i.shutdown_code().unwrap_or(0) as u8,
                        dying: i.flags & XEN_DOMINF_DYING != 0,
                        cpu_time_ns: i.cpu_time,
                        ssid_label: None,
                    })
                    .collect();
                out(&xfmt::list(&doms, verbose, context));
            }
            Command::Info { item, .. } => out(&xfmt::info(&host_info(), item.as_deref())),
            Command::Create { config_file, overrides, console, paused, dryrun, .. } => {
                let Some(path) = config_file else {
                    return out("Config file not specified\n");
                };
                if dryrun {
                    return self.create_dryrun(&path, &overrides);
                }
                self.create(&path, &overrides, console, paused);
            }
            Command::Destroy { domain, force } => {
                let id = match self.find(&domain) {
                    Ok(id) => id,
                    Err(e) => return out(&format!("{e}\n")),
                };
                if id == 0 && !force {
                    return out("Destroying domid 0 is not allowed unless -f is given.\n");
                }
                if id == 0 {
                    return out("libxl: error: Cannot destroy the control domain\ndestroy failed (rc=-3)\n");
                }
                if p::getdomaininfo(id as u16).is_err() {
                    self.forget(id);
                    return out(&format!(
                        "libxl: error: Domain {id}:Non-existant domain\nlibxl: error: Domain {id}:Unable to destroy guest\nlibxl: error: Domain {id}:Destruction of domain failed\ndestroy failed (rc=-21)\n"
                    ));
                }
                if let Some(e) = self.destroy(id) {
                    out(&format!("libxl: error: Domain {id}:destroy failed: {}\ndestroy failed (rc=-3)\n", errno_rc(e)));
                }
            }
            Command::Shutdown { target, .. } => self.shutdown(target, 0, "Shutting down"),
            Command::Reboot { target, .. } => self.shutdown(target, 1, "Rebooting"),
            Command::Pause { domain } => self.simple(&domain, p::pause, "pause"),
            Command::Unpause { domain } => self.simple(&domain, p::unpause, "unpause"),
            Command::Console { domain, .. } => {
                let id = match self.find(&domain) {
                    Ok(id) => id,
                    Err(e) => return out(&format!("{e}\n")),
                };
                self.attach(id);
            }
            Command::Dmesg { clear } => dmesg(clear),
            Command::Uptime { short, domains } => self.uptime(short, &domains),
            Command::VcpuList { domains } => self.vcpu_list(&domains),
            Command::Domid { name } => match Names(&self.doms).domid_by_name(&name) {
                Some(id) => out(&format!("{id}\n")),
                None => out(&format!("Can't get domid of domain name '{name}', maybe this domain does not exist.\n")),
            },
            Command::Domname { domid } => match domid.parse::<u32>() {
                Ok(id) if id == 0 || self.doms.contains_key(&id) => out(&format!("{}\n", self.name_of(id))),
                _ => out(&format!("Can't get domain name of domain id '{domid}', maybe this domain does not exist.\n")),
            },
            Command::Help { command } => out(&xl::help(command.as_deref())),
            Command::Xenctx { domid, vcpu, all } => xenctx(&domid, vcpu, all),
            Command::BlockList { domains } => {
                out(&format!(
                    "{:<5} {:<3} {:<6} {:<5} {:<6} {:<8} {:<30}\n",
                    "Vdev", "BE", "handle", "state", "evt-ch", "ring-ref", "BE-path"
                ));
                for d in domains {
                    match self.find(&d) {
                        Ok(id) => {
                            let l = self.blk.list(&mut self.xs, id as u16);
                            out(&l)
                        }
                        Err(e) => out(&format!("{e}\n")),
                    }
                }
            }
            Command::BlockAttach { domain, spec } => self.block_attach(&domain, &spec),
            Command::NetworkAttach { domain, spec } => self.network_attach(&domain, &spec),
            Command::NetworkList { domains } => {
                out(&format!(
                    "{:<3} {:<2} {:<17} {:<6} {:<5} {:<6} {:>5}/{:<5} {:<30}\n",
                    "Idx", "BE", "Mac Addr.", "handle", "state", "evt-ch", "tx-", "rx-ring-ref", "BE-path"
                ));
                for d in domains {
                    match self.find(&d) {
                        Ok(id) => {
                            let l = self.net.list(&mut self.xs, id as u16);
                            out(&l)
                        }
                        Err(e) => out(&format!("{e}\n")),
                    }
                }
            }
            Command::NetworkDetach { domain, dev } => {
                let id = match self.find(&domain) {
                    Ok(id) => id,
                    Err(e) => return out(&format!("{e}\n")),
                };
                let done = self
                    .net
                    .find_devid(id as u16, &dev)
                    .is_some_and(|n| self.net.detach(&mut self.xs, id as u16, n));
                if !done {
                    out(&format!("Unknown device {dev}.\n"));
                }
                self.xs.poll();
            }
            Command::NetTool { tool, args } => self.net_tool(&tool, &args),
            Command::BlockDetach { domain, dev, force } => {
                let id = match self.find(&domain) {
                    Ok(id) => id,
                    Err(e) => return out(&format!("{e}\n")),
                };
                let devid = dev
                    .parse::<u32>()
                    .ok()
                    .or_else(|| dom0_tools::diskspec::devid(&dev));
                let done = devid.is_some_and(|n| self.blk.detach(&mut self.xs, id as u16, n, force));
                if !done {
                    out(&format!("Error: Device {dev} not connected.\n"));
                }
                self.xs.poll();
            }
            Command::Blkdev { args } => self.disks.command(&args),
            Command::Xenstore { tool, flags, args } => self.xenstore(&tool, &flags, &args),
            Command::BenchCreate { config_file, rounds } => {
                self.bench_create(&config_file, rounds)
            }
            Command::NotYet { command } => out(&xl::not_yet_message(&command)),
            Command::VcpuPin {
                domain,
                vcpu,
                hard,
                soft,
                ..
            } => self.vcpu_pin(&domain, vcpu, &hard, &soft),
            Command::SchedCredit {
                domain,
                weight,
                cap,
                schedparam,
                cpupool,
                ..
            } => {
                if schedparam || cpupool.is_some() {
                    out(&xl::not_yet_message("sched-credit -s/-p"));
                } else {
                    self.sched_credit(domain.as_deref(), weight, cap);
                }
            }
        }
    }

    fn simple(&mut self, arg: &str, f: fn(u16) -> Result<(), Errno>, what: &str) {
        let id = match self.find(arg) {
            Ok(id) => id,
            Err(e) => return out(&format!("{e}\n")),
        };
        if let Err(e) = u16::try_from(id)
            .map_err(|_| xen_abi::errno::ESRCH)
            .and_then(f)
        {
            out(&format!(
                "libxl: error: Domain {id}:{what} failed: {}\n",
                errno_rc(e)
            ));
        }
    }

    fn shutdown(&mut self, target: Target, reason: u32, verb: &str) {
        let ids: Vec<u32> = match target {
            Target::All => all_domains()
                .iter()
                .map(|i| u32::from(i.domain))
                .filter(|&d| d != 0)
                .collect(),
            Target::Domain(arg) => match self.find(&arg) {
                Ok(id) => alloc::vec![id],
                Err(e) => return out(&format!("{e}\n")),
            },
        };
        for id in ids {
            out(&format!("{verb} domain {id}\n"));
            let mut op = xen_abi::sched::SchedRemoteShutdown {
                domain_id: id as u16,
                _pad: 0,
                reason,
            };
            // SAFETY: `op` is the live struct SCHEDOP_remote_shutdown takes.
            let r = unsafe {
                guest_sdk::hypercall::sched_op(
                    xen_abi::sched::SCHEDOP_REMOTE_SHUTDOWN,
                    &mut op as *mut _ as *mut u8,
                )
            };
            if let Err(e) = r {
                out(&format!(
                    "libxl: error: Domain {id}:shutdown failed: {}\n",
                    errno_rc(e)
                ));
            }
        }
    }

    fn attach(&mut self, id: u32) {
        let Some(d) = self.doms.get_mut(&id) else {
            return out(&format!(
                "xenconsole: Could not read tty from store: domain {id} has no console\n"
            ));
        };
        let Some(c) = d.console.as_mut() else {
            return out(&format!("xenconsole: domain {id} has no console\n"));
        };
        let pending = c.log.contents();
        c.log = dom0_tools::conring::OutputLog::new(crate::console::LOG_BYTES);
        write_bytes(&pending);
        self.shell.attach(id);
    }

    /// `xl create`.
    /// Read and parse a config file as `xl create` does, printing what xl prints on the
    /// way; `None` if it cannot be used.
    fn load_config(&self, path: &str, overrides: &[String]) -> Option<DomainConfig> {
        out(&format!("Parsing config from {path}\n"));
        let Some(text) = self.file(path) else {
            out(&format!(
                "Failed to read config file: {path}: No such file or directory\n"
            ));
            return None;
        };
        let ov: Vec<&str> = overrides.iter().map(String::as_str).collect();
        let parsed = match cfg::parse_with_overrides(path, text, &ov) {
            Ok(c) => c,
            Err(e) => {
                out(&e.to_string());
                out(cfg::ParseError::XL_TRAILER);
                return None;
            }
        };
        let mut warnings = Vec::new();
        let dc = DomainConfig::from_config(&parsed, &|_| None, &mut warnings);
        for w in &warnings {
            out(&format!("{w}\n"));
        }
        match dc {
            Ok(d) => Some(d),
            Err(e) => {
                out(&format!("{e}\n"));
                None
            }
        }
    }

    /// `xl create -n`: the configuration as JSON, nothing created.
    fn create_dryrun(&self, path: &str, overrides: &[String]) {
        if let Some(dc) = self.load_config(path, overrides) {
            let uuid = dc.uuid.unwrap_or_default();
            out(&xfmt::create_dryrun(&xfmt::domain_config_json(
                &dc,
                &uuid,
                nr_cpus(),
            )));
        }
    }

    /// `xl list -l [Domain]`: each domain's configuration as libxl keeps it, with the
    /// live memory and vCPU figures (`libxl_retrieve_domain_configuration`). dom0 has the
    /// stub configuration `xen-init-dom0` stores for it.
    fn list_long(&self, infos: &[XenDomctlGetdomaininfo]) {
        let doms: Vec<(u32, xfmt::Json)> = infos
            .iter()
            .map(|i| {
                let id = u32::from(i.domain);
                let mut dc = match self.doms.get(&id) {
                    Some(d) => d.cfg.clone(),
                    None => DomainConfig::stub(&self.name_of(id)),
                };
                dc.target_memkb = i.tot_pages * 4;
                dc.max_memkb = i.max_pages * 4;
                dc.max_vcpus = i.max_vcpu_id + 1;
                dc.vcpus = i.nr_online_vcpus;
                (id, xfmt::domain_config_json(&dc, &i.handle, nr_cpus()))
            })
            .collect();
        out(&xfmt::list_long(&doms));
    }

    /// `bench-create FILE N`: N rounds of create, wait for the guest's first console
    /// output, destroy. Prints `bench: domain_create_first_output cycles=AVG min=MIN
    /// max=MAX iters=N` (TSC cycles from the start of the create).
    fn bench_create(&mut self, path: &str, rounds: u32) {
        const GIVE_UP_NS: u64 = 60_000_000_000;
        let mut samples = Vec::new();
        for _ in 0..rounds {
            let before: Vec<u32> = self.doms.keys().copied().collect();
            let t0 = guest_sdk::time::rdtsc();
            self.create(path, &[], false, false);
            let Some(id) = self.doms.keys().copied().find(|k| !before.contains(k)) else {
                return out("bench-create: the domain was not created\n");
            };
            let deadline = now_ns() + GIVE_UP_NS;
            let first = loop {
                self.poll_consoles();
                let Some(d) = self.doms.get(&id) else {
                    break None;
                };
                if let Some(t) = d.first_output_tsc {
                    break Some(t);
                }
                let Some(port) = d.console.as_ref().map(|c| c.port) else {
                    break None;
                };
                if now_ns() > deadline {
                    break None;
                }
                let _ = guest_sdk::sched::poll(&[port], now_ns() + 100_000_000);
            };
            self.destroy(id);
            match first {
                Some(t) => samples.push(t.saturating_sub(t0)),
                None => return out(&format!("bench-create: domain {id} printed nothing\n")),
            }
        }
        let n = samples.len() as u64;
        let (min, max) = (
            samples.iter().copied().min().unwrap_or(0),
            samples.iter().copied().max().unwrap_or(0),
        );
        let avg = samples.iter().sum::<u64>() / n.max(1);
        out(&format!(
            "bench: domain_create_first_output cycles={avg} min={min} max={max} iters={n}\n"
        ));
    }

    /// `xl block-attach DOMAIN SPEC...`: a new disk for a running (or paused) domain;
    /// the guest sees `device/vbd/<devid>` appear.
    fn block_attach(&mut self, domain: &str, spec: &[String]) {
        let id = match self.find(domain) {
            Ok(id) => id,
            Err(e) => return out(&format!("{e}\n")),
        };
        if !self.doms.contains_key(&id) {
            return out(&format!(
                "libxl: error: Domain {id}: unable to add disk device\n"
            ));
        }
        let d = match dom0_tools::diskspec::DiskSpec::parse(&spec.join(",")) {
            Ok(d) => d,
            Err(e) => return out(&format!("xlu: error: {e}\n")),
        };
        if self.blk.has(id as u16, d.devid()) {
            return out(&format!(
                "libxl: error: Domain {id}: device {} already exists\n",
                d.vdev
            ));
        }
        let ramdisk = self.ramdisk;
        let target = d.target.clone();
        let file = move || match archive::find(ramdisk, &target) {
            Ok(Some(e)) => Some(e.data),
            _ => None,
        };
        if let Err(e) = self.blk.add(
            &mut self.xs,
            id as u16,
            &d,
            self.disks.by_dev(&d.target),
            file,
        ) {
            out(&format!(
                "libxl: error: Domain {id}: disk {}: {e}\n",
                d.vdev
            ));
        }
        self.xs.poll();
    }

    fn network_attach(&mut self, domain: &str, spec: &[String]) {
        let id = match self.find(domain) {
            Ok(id) => id,
            Err(e) => return out(&format!("{e}\n")),
        };
        if !self.doms.contains_key(&id) {
            return out("libxl_device_nic_add failed.\n");
        }
        let v = match dom0_tools::vifspec::VifSpec::parse(&spec.join(",")) {
            Ok(v) => v,
            Err(e) => return out(&format!("{e}\n")),
        };
        let devid = v.devid.unwrap_or_else(|| self.net.next_devid(id as u16));
        let mac = v.mac_or(random3());
        if let Err(e) = self.net.add(&mut self.xs, id as u16, devid, &v, mac) {
            out(&format!(
                "libxl: error: Domain {id}: vif {devid}: {e}\nlibxl_device_nic_add failed.\n"
            ));
        }
        self.xs.poll();
    }

    fn net_tool(&mut self, tool: &str, args: &[String]) {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        match (tool, a.as_slice()) {
            ("brctl", ["show"] | []) => out(&self.net.describe(false)),
            ("brctl", ["showmacs", b]) if *b == crate::net::BRIDGE => out(&self.net.describe(true)),
            ("brctl", ["showmacs", b]) => out(&format!("bridge {b} does not exist!\n")),
            ("ifconfig", []) => {
                self.net.pump();
                out(&self.net.ifconfig())
            }
            ("netbench", _) => {
                let (xs, blk) = (&mut self.xs, &mut self.blk);
                let mut background = || {
                    xs.poll();
                    blk.poll(xs);
                    xs.poll();
                };
                crate::netbench::command(&mut self.net, &a, &mut background)
            }
            ("brctl", _) => out("usage: brctl show | brctl showmacs xenbr0\n"),
            _ => out(&format!("usage: {tool}\n")),
        }
    }

    fn create(&mut self, path: &str, overrides: &[String], console: bool, paused: bool) {
        let Some(dc) = self.load_config(path, overrides) else {
            return;
        };
        if Names(&self.doms).domid_by_name(&dc.name).is_some() {
            return out(&format!(
                "libxl: error: Domain with name \"{}\" already exists.\nlibxl: error: cannot make domain: -6\n",
                dc.name
            ));
        }
        let Some(kernel) = self.file(&dc.kernel) else {
            return out(&format!(
                "libxl: error: failed to read kernel {}: No such file or directory\nlibxl: error: cannot (re-)build domain: -3\n",
                dc.kernel
            ));
        };
        let disks = match dom0_tools::diskspec::parse_all(&dc.disks) {
            Ok(d) => d,
            Err(e) => {
                return out(&format!(
                    "xlu: error: {e}\nlibxl: error: cannot (re-)build domain: -3\n"
                ))
            }
        };
        let vifs = match dom0_tools::vifspec::parse_all(&dc.vifs) {
            Ok(v) => v,
            Err(e) => {
                return out(&format!(
                    "{e}\nlibxl: error: cannot (re-)build domain: -3\n"
                ))
            }
        };
        let built = match builder::build(&dc, kernel) {
            Ok(b) => b,
            Err(e) => {
                return out(&format!(
                    "libxl: error: {e}\nlibxl: error: cannot (re-)build domain: -3\n"
                ));
            }
        };
        let id = u32::from(built.domid);
        if let Err(e) = self.store_domain(id, &dc, &built) {
            out(&format!(
                "libxl: error: Domain {id}: xenstore: {e}\nlibxl: error: cannot (re-)build domain: -3\n"
            ));
            self.unstore_domain(id);
            let _ = p::destroydomain(built.domid);
            return;
        }
        for d in &disks {
            let ramdisk = self.ramdisk;
            let target = d.target.clone();
            let file = move || match archive::find(ramdisk, &target) {
                Ok(Some(e)) => Some(e.data),
                _ => None,
            };
            if let Err(e) = self.blk.add(
                &mut self.xs,
                built.domid,
                d,
                self.disks.by_dev(&d.target),
                file,
            ) {
                out(&format!(
                    "libxl: error: Domain {id}: disk {}: {e}\nlibxl: error: cannot (re-)build domain: -3\n",
                    d.vdev
                ));
                self.blk.remove_domain(&mut self.xs, built.domid);
                self.unstore_domain(id);
                let _ = p::destroydomain(built.domid);
                return;
            }
        }
        for v in &vifs {
            let devid = v.devid.unwrap_or(0);
            let mac = v.mac_or(random3());
            if let Err(e) = self.net.add(&mut self.xs, built.domid, devid, v, mac) {
                out(&format!(
                    "libxl: error: Domain {id}: vif {devid}: {e}\nlibxl: error: cannot (re-)build domain: -3\n"
                ));
                self.blk.remove_domain(&mut self.xs, built.domid);
                self.net.remove_domain(&mut self.xs, built.domid);
                self.unstore_domain(id);
                let _ = p::destroydomain(built.domid);
                return;
            }
        }
        let console_be = match Console::connect(built.domid, built.console_mfn, built.console_port)
        {
            Ok(c) => Some(c),
            Err(e) => {
                out(&format!(
                    "libxl: warning: Domain {id}: console backend failed: {e:?}\n"
                ));
                None
            }
        };
        self.doms.insert(
            id,
            Dom {
                name: dc.name.clone(),
                path: path.into(),
                overrides: overrides.to_vec(),
                cfg: dc,
                console: console_be,
                created_ns: now_ns(),
                first_output_tsc: None,
            },
        );
        if !paused {
            if let Err(e) = p::unpause(built.domid) {
                out(&format!(
                    "libxl: error: Domain {id}:unpause failed: {e:?}\n"
                ));
            }
        }
        if console {
            self.attach(id);
        }
    }

    fn uptime(&self, short: bool, domains: &[String]) {
        let ids: Vec<u32> = if domains.is_empty() {
            all_domains().iter().map(|i| u32::from(i.domain)).collect()
        } else {
            let mut v = Vec::new();
            for a in domains {
                match self.find(a) {
                    Ok(id) => v.push(id),
                    Err(e) => return out(&format!("{e}\n")),
                }
            }
            v
        };
        let now = now_ns();
        let secs = guest_sdk::time::wallclock().map(|(s, _)| s).unwrap_or(0) % 86400;
        let hms = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
        let mut o = String::new();
        if !short {
            o.push_str(&xfmt::uptime_header());
        }
        for id in ids {
            let up = if id == 0 {
                now / 1_000_000_000
            } else {
                match self.doms.get(&id) {
                    Some(d) => now.saturating_sub(d.created_ns) / 1_000_000_000,
                    None => 0,
                }
            };
            o.push_str(&xfmt::uptime_line(&self.name_of(id), id, up, short, &hms));
        }
        out(&o);
    }

    /// `xl sched-credit [-d <Domain> [-w W] [-c C]]`: list every domain's weight and
    /// cap, show one domain's, or set them (an option left out stays unchanged).
    fn sched_credit(&self, domain: Option<&str>, weight: Option<i64>, cap: Option<i64>) {
        let line = |id: u32| match p::sched_credit_get(id as u16) {
            Ok(c) => xfmt::sched_credit_line(
                &self.name_of(id),
                id,
                i32::from(c.weight),
                i32::from(c.cap),
            ),
            Err(e) => format!(
                "libxl: error: Domain {id}:getting domain sched credit failed: {}\n",
                errno_rc(e)
            ),
        };
        let Some(arg) = domain else {
            let pool = p::sched_credit_pool_get(0).ok();
            let mut o = xfmt::sched_credit_pool(&xfmt::CreditPool {
                name: "Pool-0".into(),
                tslice_ms: pool.map_or(30, |c| c.tslice_ms as i32),
                ratelimit_us: pool.map_or(1000, |c| c.ratelimit_us as i32),
                migration_delay_us: pool.map_or(0, |c| c.vcpu_migr_delay_us as i32),
            });
            o.push_str(&xfmt::sched_credit_header());
            for info in all_domains() {
                o.push_str(&line(u32::from(info.domain)));
            }
            return out(&o);
        };
        let id = match self.find(arg) {
            Ok(id) => id,
            Err(e) => return out(&format!("{e}\n")),
        };
        if weight.is_none() && cap.is_none() {
            return out(&format!("{}{}", xfmt::sched_credit_header(), line(id)));
        }
        let max_cap =
            p::getdomaininfo(id as u16).map_or(100, |i| (i64::from(i.max_vcpu_id) + 1) * 100);
        if let Some(w) = weight {
            if !(1..=65535).contains(&w) {
                return out(&format!("libxl: error: Domain {id}:Cpu weight out of range, valid values are within range from 1 to 65535\n"));
            }
        }
        if let Some(c) = cap {
            if !(0..=max_cap).contains(&c) {
                return out(&format!("libxl: error: Domain {id}:Cpu cap out of range, valid range is from 0 to {max_cap} for specified number of vcpus\n"));
            }
        }
        // Xen's encoding of "unchanged": weight 0, cap 0xffff.
        let params = XenDomctlSchedCredit {
            weight: weight.map_or(0, |w| w as u16),
            cap: cap.map_or(0xffff, |c| c as u16),
        };
        if let Err(e) = p::sched_credit_set(id as u16, &params) {
            out(&format!(
                "libxl: error: Domain {id}:setting domain sched credit failed: {}\n",
                errno_rc(e)
            ));
        }
    }

    /// `xl vcpu-pin <Domain> <VCPU|all> <Hard|-|all> [-]`: set the hard affinity (soft
    /// affinity is not supported by this toolstack).
    fn vcpu_pin(&self, domain: &str, vcpu: xl::VcpuSel, hard: &xl::PinSpec, soft: &xl::PinSpec) {
        let id = match self.find(domain) {
            Ok(id) => id,
            Err(e) => return out(&format!("{e}\n")),
        };
        if *soft != xl::PinSpec::Keep {
            return out(&xl::not_yet_message("vcpu-pin (soft affinity)"));
        }
        let xl::PinSpec::Cpus(spec) = hard else {
            return;
        };
        let nr_cpus = p::physinfo().map_or(1, |i| i.nr_cpus as usize);
        let all = |_node: usize| -> Option<CpuSet> { Some(CpuSet::all().truncated(nr_cpus)) };
        let set = match CpuSet::parse(spec, &|n| if n == 0 { all(n) } else { None }) {
            Ok(s) => s.truncated(nr_cpus),
            Err(e) => return out(&format!("{e}\n")),
        };
        let max_vcpu = match p::getdomaininfo(id as u16) {
            Ok(i) => i.max_vcpu_id,
            Err(e) => {
                return out(&format!(
                    "Error: Domain {id} does not exist ({}).\n",
                    errno_rc(e)
                ))
            }
        };
        let vcpus: Vec<u32> = match vcpu {
            xl::VcpuSel::All => (0..=max_vcpu.min(127)).collect(),
            xl::VcpuSel::Id(v) if v <= max_vcpu => alloc::vec![v],
            xl::VcpuSel::Id(v) => {
                return out(&format!(
                    "libxl: error: Domain {id}:vcpu {v} out of range\n"
                ))
            }
        };
        for v in vcpus {
            let mut map = alloc::vec![0u8; nr_cpus.div_ceil(8)];
            for c in set.iter() {
                if let Some(b) = map.get_mut(c / 8) {
                    *b |= 1 << (c % 8);
                }
            }
            if let Err(e) = p::set_vcpu_affinity(id as u16, v, &mut map) {
                return out(&format!(
                    "libxl: error: Domain {id}:Setting vcpu affinity for vcpu {v} failed: {}\n",
                    errno_rc(e)
                ));
            }
        }
    }

    fn vcpu_list(&self, domains: &[String]) {
        let nr_cpus = p::physinfo().map(|i| i.nr_cpus as usize).unwrap_or(1);
        let ids: Vec<u32> = if domains.is_empty() {
            all_domains().iter().map(|i| u32::from(i.domain)).collect()
        } else {
            let mut v = Vec::new();
            for a in domains {
                match self.find(a) {
                    Ok(id) => v.push(id),
                    Err(e) => return out(&format!("{e}\n")),
                }
            }
            v
        };
        let mut o = xfmt::vcpu_list_header();
        for id in ids {
            let Ok(info) = p::getdomaininfo(id as u16) else {
                o.push_str(&format!("Error: Domain {id} does not exist.\n"));
                continue;
            };
            if info.max_vcpu_id == XEN_INVALID_MAX_VCPU_ID {
                continue;
            }
            for v in 0..=info.max_vcpu_id.min(127) {
                let Ok(vi) = p::getvcpuinfo(id as u16, v) else {
                    continue;
                };
                let (mut hard, mut soft) = ([0u8; 32], [0u8; 32]);
                let _ = p::get_vcpu_affinity(id as u16, v, &mut hard, &mut soft);
                let vc = xfmt::VcpuInfo {
                    vcpuid: v,
                    cpu: vi.cpu,
                    online: vi.online != 0,
                    blocked: vi.blocked != 0,
                    running: vi.running != 0,
                    vcpu_time_ns: vi.cpu_time,
                    hard: cpuset(&hard),
                    soft: cpuset(&soft),
                };
                o.push_str(&xfmt::vcpu_list_line(&self.name_of(id), id, &vc, nr_cpus));
            }
        }
        out(&o);
    }
}

/// strerror(3) of a XenStore error name.
fn strerror(name: &str) -> &'static str {
    match name {
        "ENOENT" => "No such file or directory",
        "EACCES" => "Permission denied",
        "EINVAL" => "Invalid argument",
        "EEXIST" => "File exists",
        "ENOSPC" => "No space left on device",
        "E2BIG" => "Argument list too long",
        "EAGAIN" => "Resource temporarily unavailable",
        _ => "Input/output error",
    }
}

/// The number of physical CPUs (`physinfo`), for affinity bitmaps.
fn nr_cpus() -> usize {
    p::physinfo().map(|i| i.nr_cpus as usize).unwrap_or(1)
}

/// `xenctx DOMID VCPU`: pause the domain, read the vCPU's context, unpause, print.
fn xenctx(domid: &str, vcpu: u32, all: bool) {
    let Ok(dom) = domid.parse::<u16>() else {
        return out(&format!("xenctx: bad domid '{domid}'\n"));
    };
    if let Err(e) = p::pause(dom) {
        return out(&format!("xenctx: cannot pause domain {dom}: {e:?}\n"));
    }
    let mut ctx = alloc::boxed::Box::new(xen_abi::xen::VcpuGuestContext::ZERO);
    let got = p::getvcpucontext(dom, vcpu, &mut ctx);
    let _ = p::unpause(dom);
    match got {
        Ok(()) => out(&xfmt::xenctx(&ctx, all)),
        Err(e) => out(&format!(
            "xc_vcpu_getcontext(dom {dom}, vcpu {vcpu}): {}\n",
            errno_text(e)
        )),
    }
}

/// strerror(3) for the errors `getvcpucontext` gives.
fn errno_text(e: Errno) -> String {
    match e.0 {
        3 => "No such process".into(),
        14 => "Bad address".into(),
        16 => "Device or resource busy".into(),
        22 => "Invalid argument".into(),
        61 => "No data available".into(),
        n => format!("error {n}"),
    }
}

fn dmesg(clear: bool) {
    let mut buf = alloc::vec![0u8; 4096];
    let mut idx = 0u32;
    for _ in 0..1024 {
        match p::readconsole(&mut buf, Some(idx), false) {
            Ok((0, _)) => break,
            Ok((n, next)) => {
                write_bytes(buf.get(..n).unwrap_or(&[]));
                if next == idx {
                    break;
                }
                idx = next;
            }
            Err(e) => {
                out(&format!(
                    "libxl: error: reading the hypervisor console failed: {e:?}\n"
                ));
                return;
            }
        }
    }
    if clear {
        let _ = p::readconsole(&mut [0u8; 1], Some(idx), true);
    }
}

fn host_info() -> xfmt::HostInfo {
    let mut h = xfmt::HostInfo {
        host: "dom0".into(),
        release: env!("CARGO_PKG_VERSION").into(),
        version: "rust-dom0".into(),
        machine: "x86_64".into(),
        ..Default::default()
    };
    if let Ok(pi) = p::physinfo() {
        h.nr_cpus = pi.nr_cpus;
        h.max_cpu_id = pi.max_cpu_id;
        h.nr_nodes = pi.nr_nodes;
        h.cores_per_socket = pi.cores_per_socket;
        h.threads_per_core = pi.threads_per_core;
        h.cpu_khz = pi.cpu_khz;
        h.hw_cap = pi.hw_cap;
        h.total_pages = pi.total_pages;
        h.free_pages = pi.free_pages;
        h.outstanding_pages = pi.outstanding_pages;
        let c = pi.capabilities;
        h.cap_hvm = c & 1 != 0;
        h.cap_pv = c & (1 << 1) != 0;
        h.cap_hvm_directio = c & (1 << 2) != 0;
        h.cap_hap = c & (1 << 3) != 0;
        h.cap_shadow = c & (1 << 4) != 0;
        h.cap_iommu_hap_pt_share = c & (1 << 5) != 0;
        h.cap_vmtrace = c & (1 << 6) != 0;
        h.cap_vpmu = c & (1 << 7) != 0;
        h.cap_gnttab_v1 = c & (1 << 8) != 0;
        h.cap_gnttab_v2 = c & (1 << 9) != 0;
    }
    if let Ok((maj, min)) = guest_sdk::version::version() {
        h.xen_major = u32::from(maj);
        h.xen_minor = u32::from(min);
    }
    if let Ok(e) = guest_sdk::version::extraversion() {
        h.xen_extra = String::from_utf8_lossy(c_str(&e)).into_owned();
    }
    if let Ok(c) = guest_sdk::version::capabilities() {
        h.xen_caps = String::from_utf8_lossy(c_str(&c)).into_owned();
    }
    h.xen_scheduler = match p::sched_id() {
        Ok(XEN_SCHEDULER_CREDIT) => "credit",
        Ok(XEN_SCHEDULER_CREDIT2) => "credit2",
        Ok(_) => "other",
        Err(_) => "unknown",
    }
    .into();
    h.pagesize = guest_sdk::version::pagesize()
        .map(|p| p as u32)
        .unwrap_or(4096);
    h.virt_start = guest_sdk::version::virt_start().unwrap_or(0);
    h
}

/// Three bytes for a random MAC (libxl takes them from a fresh UUID; the TSC's low bits
/// mixed are as good for telling guests apart).
fn random3() -> [u8; 3] {
    let mut z = guest_sdk::time::rdtsc().wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    [z as u8, (z >> 8) as u8, (z >> 16) as u8]
}
