//! `xl` output, compared with real xl's.

use dom0_tools::cfg::{self, CpuSet, DomainConfig};
use dom0_tools::fmt::{self, DomainInfo, HostInfo, VcpuInfo};

fn dom(domid: u32, name: &str, mem_mb: u64, vcpus: u32, secs_x10: u64) -> DomainInfo {
    DomainInfo {
        domid,
        name: name.into(),
        current_memkb: mem_mb * 1024,
        vcpu_online: vcpus,
        running: true,
        cpu_time_ns: secs_x10 * 100_000_000,
        ..Default::default()
    }
}

#[test]
fn xl_list_matches_the_man_page_example() {
    // xl(1), "list": the rows as printed (the man page shows the header's tabs expanded).
    let out = fmt::list(
        &[
            dom(0, "Domain-0", 750, 4, 117943),
            dom(1, "win", 1019, 1, 3),
            dom(2, "linux", 2048, 2, 56242),
        ],
        false,
        false,
    );
    assert_eq!(
        out,
        "Name                                        ID   Mem VCPUs\tState\tTime(s)\n\
         Domain-0                                     0   750     4     r-----   11794.3\n\
         win                                          1  1019     1     r-----       0.3\n\
         linux                                        2  2048     2     r-----    5624.2\n"
    );
}

#[test]
fn xl_list_states() {
    let mut d = dom(4, "Windows_XP", 2047, 1, 0);
    d.running = false;
    d.paused = true;
    let out = fmt::list(&[d.clone()], false, false);
    // xl(1), "claims": "Windows_XP   4  2047     1     --p---       0.0".
    assert!(out.ends_with(
        "Windows_XP                                   4  2047     1     --p---       0.0\n"
    ));
    d.paused = false;
    d.shutdown = true;
    d.shutdown_reason = 3; // crash
    d.dying = true;
    assert!(fmt::list(&[d.clone()], false, false).contains("     ---scd       0.0\n"));
    d.shutdown_reason = 9;
    assert!(fmt::list(&[d.clone()], false, false).contains("     ---s?d "));
    let out = fmt::list(&[d], true, false);
    assert!(out.starts_with(
        "Name                                        ID   Mem VCPUs\tState\tTime(s)   UUID                            Reason-Code\tSecurity Label\n"
    ));
    assert!(out.ends_with(" 00000000-0000-0000-0000-000000000000        9                -\n"));
}

#[test]
fn xl_info_format() {
    let h = HostInfo {
        host: "dom0".into(),
        nr_cpus: 4,
        max_cpu_id: 3,
        nr_nodes: 1,
        cores_per_socket: 4,
        threads_per_core: 1,
        cpu_khz: 2_893_295,
        cap_pv: true,
        cap_gnttab_v1: true,
        total_pages: 131_072,
        free_pages: 65_536,
        xen_major: 4,
        xen_minor: 17,
        xen_extra: ".0".into(),
        xen_caps: "xen-3.0-x86_64".into(),
        xen_scheduler: "credit".into(),
        pagesize: 4096,
        virt_start: 0xffff_8000_0000_0000,
        ..Default::default()
    };
    let out = fmt::info(&h, None);
    for line in [
        "host                   : dom0\n",
        "nr_cpus                : 4\n",
        "cpu_mhz                : 2893.295\n",
        "hw_caps                : 00000000:00000000:00000000:00000000:00000000:00000000:00000000:00000000\n",
        "virt_caps              : pv gnttab-v1\n",
        "total_memory           : 512\n",
        "free_memory            : 256\n",
        "xen_version            : 4.17.0\n",
        "platform_params        : virt_start=0xffff800000000000\n",
        "xend_config_format     : 4\n",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    assert!(out.starts_with("host                   : dom0\nrelease                : \n"));
    assert_eq!(fmt::info(&h, Some("free_mem")), "256\n");
    assert_eq!(fmt::info(&h, Some("xen_v")), "4.17.0\n");
}

#[test]
fn vcpu_list_format() {
    assert_eq!(
        fmt::vcpu_list_header(),
        "Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)\n"
    );
    let mut all = CpuSet::none();
    for c in 0..4 {
        all.set(c);
    }
    let v = VcpuInfo {
        vcpuid: 0,
        cpu: 2,
        online: true,
        running: true,
        vcpu_time_ns: 12_300_000_000,
        hard: all,
        soft: all,
        ..Default::default()
    };
    assert_eq!(
        fmt::vcpu_list_line("Domain-0", 0, &v, 4),
        "Domain-0                             0     0    2   r--      12.3  all / all\n"
    );
    let mut one = CpuSet::none();
    one.set(1);
    let v = VcpuInfo {
        vcpuid: 1,
        online: false,
        hard: one,
        soft: all,
        ..Default::default()
    };
    assert_eq!(
        fmt::vcpu_list_line("web", 3, &v, 4),
        "web                                  3     1    -   --p       0.0  1 / all\n"
    );
}

#[test]
fn sched_credit_and_uptime() {
    assert_eq!(
        fmt::sched_credit_pool(&fmt::CreditPool {
            name: "Pool-0".into(),
            tslice_ms: 30,
            ratelimit_us: 1000,
            migration_delay_us: 0
        }),
        "Cpupool Pool-0: tslice=30ms ratelimit=1000us migration-delay=0us\n"
    );
    assert_eq!(
        fmt::sched_credit_header(),
        "Name                                ID Weight  Cap\n"
    );
    assert_eq!(
        fmt::sched_credit_line("Domain-0", 0, 256, 0),
        "Domain-0                             0    256    0\n"
    );
    assert_eq!(
        fmt::uptime_header(),
        "Name                                ID Uptime\n"
    );
    assert_eq!(
        fmt::uptime_line("Domain-0", 0, 3725, false, ""),
        "Domain-0                             0  1:02:05\n"
    );
    assert_eq!(fmt::uptime_string(86400 + 60, false), "1 day,  0:01:00");
    assert_eq!(
        fmt::uptime_string(3 * 86400 + 11 * 3600, true),
        "3 days, 11:00"
    );
    assert_eq!(
        fmt::uptime_line("web", 2, 59, true, "10:00:00"),
        " 10:00:00 up  0:00, web (2)\n"
    );
}

#[test]
fn list_long_json() {
    let c = cfg::parse(
        "t.cfg",
        b"name='web'\nkernel='/k'\nmemory=64\nvcpus=2\ncpus='1'\nextra='quiet'\n",
    )
    .unwrap();
    let mut w = Vec::new();
    let d = DomainConfig::from_config(&c, &|_| None, &mut w).unwrap();
    let j = fmt::domain_config_json(&d, &[0x11; 16], 4);
    let out = fmt::list_long(&[(3, j)]);
    let expected = r#"[
    {
        "domid": 3,
        "config": {
            "c_info": {
                "type": "pv",
                "name": "web",
                "uuid": "11111111-1111-1111-1111-111111111111"
            },
            "b_info": {
                "max_vcpus": 2,
                "avail_vcpus": [
                    0,
                    1
                ],
                "vcpu_hard_affinity": [
                    [
                        1
                    ],
                    [
                        1
                    ]
                ],
                "max_memkb": 65536,
                "target_memkb": 65536,
                "sched_params": {

                },
                "kernel": "/k",
                "cmdline": "quiet",
                "type.pv": {

                }
            },
            "on_poweroff": "destroy",
            "on_reboot": "restart",
            "on_watchdog": "destroy",
            "on_crash": "destroy",
            "on_soft_reset": "soft_reset"
        }
    }
]

"#;
    assert_eq!(out, expected);
}

#[test]
fn cpu_time_rounds_like_c_printf_of_a_float() {
    // Expected strings from glibc: printf("%8.1f", (float)ns / 1e9).
    for (ns, want) in [
        (250_000_000u64, "     0.2"),
        (750_000_000, "     0.8"),
        (123_456_789_012_345, "123456.8"),
        (50_000_000, "     0.1"),
        (149_999_999, "     0.1"),
    ] {
        let mut d = dom(1, "x", 1, 1, 0);
        d.cpu_time_ns = ns;
        let out = fmt::list(&[d], false, false);
        let row = out.lines().nth(1).unwrap();
        assert!(row.ends_with(want), "{ns}: {row:?}");
    }
}

#[test]
fn xenctx_prints_registers_as_xenctx_does() {
    let mut c: xen_abi::xen::VcpuGuestContext = xen_abi::xen::VcpuGuestContext::ZERO;
    c.user_regs.rip = 0xffff_ffff_8000_1234;
    c.user_regs.rflags = 0x246;
    c.user_regs.rsp = 0xffff_ffff_8004_0ff8;
    c.user_regs.rax = 1;
    c.user_regs.r8 = 8;
    c.user_regs.cs = 0xe033;
    c.user_regs.ss = 0xe02b;
    c.ctrlreg[3] = 0x1234000;
    let out = fmt::xenctx(&c, false);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "rip: ffffffff80001234");
    // IF, ZF, PF set; "nz" only when ZF is clear.
    assert_eq!(lines[1], "flags: 00000246 i z p");
    assert_eq!(lines[2], "rsp: ffffffff80040ff8");
    assert_eq!(
        lines[3],
        "rax: 0000000000000001\trcx: 0000000000000000\trdx: 0000000000000000"
    );
    assert_eq!(
        lines[5],
        "rbp: 0000000000000000\t r8: 0000000000000008\t r9: 0000000000000000"
    );
    assert_eq!(lines[8], " cs: e033\t ss: e02b\t ds: 0000\t es: 0000");
    assert_eq!(lines.len(), 11);
    assert!(!out.contains("cr3"));
    c.user_regs.rflags = 0x202;
    let all = fmt::xenctx(&c, true);
    assert!(all.contains("flags: 00000202 i nz\n"), "{all}");
    assert!(all.contains("\ncr3: 0000000001234000\n"), "{all}");
    assert!(all.contains("\ndr7: 0000000000000000\n"), "{all}");
}

struct Fake(std::collections::BTreeMap<String, (Vec<u8>, Vec<String>)>);

impl fmt::StoreView for Fake {
    fn directory(&mut self, path: &str) -> Result<Vec<String>, String> {
        if !self.0.contains_key(path) {
            return Err("ENOENT".into());
        }
        let pre = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        Ok(self
            .0
            .keys()
            .filter_map(|k| k.strip_prefix(&pre))
            .filter(|r| !r.is_empty() && !r.contains('/'))
            .map(String::from)
            .collect())
    }
    fn read(&mut self, path: &str) -> Result<Vec<u8>, String> {
        self.0.get(path).map(|v| v.0.clone()).ok_or("ENOENT".into())
    }
    fn perms(&mut self, path: &str) -> Result<Vec<String>, String> {
        self.0.get(path).map(|v| v.1.clone()).ok_or("ENOENT".into())
    }
}

#[test]
fn xenstore_ls_indents_and_escapes_as_xenstore_ls() {
    let mut m = std::collections::BTreeMap::new();
    for (k, v) in [
        ("/", ""),
        ("/local", ""),
        ("/local/domain", ""),
        ("/local/domain/1", ""),
        ("/local/domain/1/name", "ticker"),
        ("/local/domain/1/odd", "a\\b\n\u{1}"),
    ] {
        m.insert(
            k.to_string(),
            (v.as_bytes().to_vec(), vec!["n0".into(), "r1".into()]),
        );
    }
    let mut f = Fake(m);
    let out = fmt::xenstore_ls(&mut f, "/", false, false).unwrap();
    assert_eq!(
        out,
        "local = \"\"\n domain = \"\"\n  1 = \"\"\n   name = \"ticker\"\n   odd = \"a\\\\b\\n\\x01\"\n"
    );
    let full = fmt::xenstore_ls(&mut f, "/local/domain/1", true, true).unwrap();
    assert_eq!(
        full,
        "/local/domain/1/name = \"ticker\"  (n0,r1)\n/local/domain/1/odd = \"a\\\\b\\n\\x01\"  (n0,r1)\n"
    );
    assert_eq!(
        fmt::xenstore_ls(&mut f, "/nosuch", false, false),
        Err("ENOENT".into())
    );
}
