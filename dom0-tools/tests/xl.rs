//! `xl` command-line parsing and messages.

use dom0_tools::xl::{self, Command, Failure, Parsed, PinSpec, Target, VcpuSel};

fn run(line: &str) -> Command {
    match xl::parse_line(line) {
        Parsed::Run(c) => c,
        other => panic!("{line}: {other:?}"),
    }
}

fn fail(line: &str) -> Failure {
    match xl::parse_line(line) {
        Parsed::Print(f) => f,
        other => panic!("{line}: {other:?}"),
    }
}

#[test]
fn list() {
    assert_eq!(
        run("xl list"),
        Command::List {
            long: false,
            verbose: false,
            context: false,
            cpupool: false,
            numa: false,
            domain: None
        }
    );
    assert_eq!(
        run("xl list -l web"),
        Command::List {
            long: true,
            verbose: false,
            context: false,
            cpupool: false,
            numa: false,
            domain: Some("web".into())
        }
    );
    // GNU getopt: options after operands, clusters, long options and their prefixes.
    assert_eq!(run("xl list 3 -lv"), run("xl list --long --verb 3"));
    assert_eq!(run("list"), run("xl list"));
    assert_eq!(
        run("xl li"),
        run("xl list"),
        "xl takes unambiguous prefixes"
    );
    let f = fail("xl list a b");
    assert!(f.stdout.starts_with("Usage: xl [-vtT] list [options] [Domain]\n\n\nList information about all/some domains.\n\nOptions:\n\n-l, --long"));
    assert_eq!(fail("xl list -x").stderr, "option `x' not supported.\n");
    assert_eq!(fail("xl list -x").status, 2);
}

#[test]
fn create() {
    assert_eq!(
        run("xl create -c /etc/xen/web.cfg memory=256 'extra=\"console=hvc0 quiet\"'"),
        Command::Create {
            config_file: Some("/etc/xen/web.cfg".into()),
            overrides: vec!["memory=256".into(), "extra=\"console=hvc0 quiet\"".into()],
            console: true,
            paused: false,
            quiet: false,
            dryrun: false,
            debug: false,
        }
    );
    match run("xl create web.cfg -p") {
        Command::Create {
            paused,
            config_file,
            ..
        } => {
            assert!(paused);
            assert_eq!(config_file.as_deref(), Some("web.cfg"));
        }
        c => panic!("{c:?}"),
    }
    match run("xl -N create -f a.cfg") {
        Command::Create {
            dryrun,
            config_file,
            ..
        } => {
            assert!(dryrun);
            assert_eq!(config_file.as_deref(), Some("a.cfg"));
        }
        c => panic!("{c:?}"),
    }
    let f = fail("xl create a.cfg b.cfg");
    assert_eq!(f.status, 2);
    assert!(f.stdout.starts_with("Usage: xl [-vtTfN] create <ConfigFile> [options] [vars]\n\nCreate a domain from config file <filename>.\n\nOptions:\n\n-c "));
    assert_eq!(
        fail("xl -N list").stderr,
        "command does not implement -N (dryrun) option\n"
    );
}

#[test]
fn domain_commands() {
    assert_eq!(
        run("xl destroy web"),
        Command::Destroy {
            domain: "web".into(),
            force: false
        }
    );
    assert_eq!(run("xl pause 3"), Command::Pause { domain: "3".into() });
    assert_eq!(run("xl unpause 3"), Command::Unpause { domain: "3".into() });
    assert_eq!(
        run("xl shutdown -w web"),
        Command::Shutdown {
            target: Target::Domain("web".into()),
            wait: true,
            fallback: false
        }
    );
    assert_eq!(
        run("xl reboot -a"),
        Command::Reboot {
            target: Target::All,
            wait: false,
            fallback: false
        }
    );
    assert_eq!(
        run("xl console web"),
        Command::Console {
            domain: "web".into(),
            kind: None,
            num: 0
        }
    );
    let f = fail("xl pause");
    assert_eq!(f.stderr, "'xl pause' requires at least 1 argument.\n\n");
    assert_eq!(
        f.stdout,
        "Usage: xl [-vtTf] pause <Domain>\n\nPause execution of a domain.\n\n"
    );
    assert_eq!(f.status, 2);
    assert_eq!(
        fail("xl shutdown").stderr,
        "You must specify -a or a domain id.\n\n"
    );
    assert_eq!(
        fail("xl console -t foo web").stderr,
        "console type supported are: pv, serial, vuart\n"
    );
}

#[test]
fn host_commands() {
    assert_eq!(
        run("xl info"),
        Command::Info {
            numa: false,
            item: None
        }
    );
    assert_eq!(
        run("xl info free_memory"),
        Command::Info {
            numa: false,
            item: Some("free_memory".into())
        }
    );
    assert_eq!(run("xl dmesg -c"), Command::Dmesg { clear: true });
    assert_eq!(
        run("xl uptime -s web 0"),
        Command::Uptime {
            short: true,
            domains: vec!["web".into(), "0".into()]
        }
    );
    assert_eq!(run("xl vcpu-list"), Command::VcpuList { domains: vec![] });
    assert_eq!(
        run("xl vcpu-list a b"),
        Command::VcpuList {
            domains: vec!["a".into(), "b".into()]
        }
    );
}

#[test]
fn vcpu_pin() {
    assert_eq!(
        run("xl vcpu-pin web 1 0-3,^1"),
        Command::VcpuPin {
            domain: "web".into(),
            vcpu: VcpuSel::Id(1),
            hard: PinSpec::Cpus("0-3,^1".into()),
            soft: PinSpec::Keep,
            force: false
        }
    );
    assert_eq!(
        run("xl vcpu-pin web all - 2"),
        Command::VcpuPin {
            domain: "web".into(),
            vcpu: VcpuSel::All,
            hard: PinSpec::Keep,
            soft: PinSpec::Cpus("2".into()),
            force: false
        }
    );
    assert_eq!(
        fail("xl vcpu-pin web x 1").stderr,
        "Error: Invalid argument x as VCPU.\n"
    );
    assert_eq!(
        fail("xl vcpu-pin -f web all 1").stderr,
        "Error: --force and 'all' as VCPU not allowed.\n"
    );
    assert_eq!(
        fail("xl vcpu-pin web 1").stderr,
        "'xl vcpu-pin' requires at least 3 arguments.\n\n"
    );
}

#[test]
fn sched_credit() {
    assert_eq!(
        run("xl sched-credit -d web -w 512 -c 50"),
        Command::SchedCredit {
            domain: Some("web".into()),
            weight: Some(512),
            cap: Some(50),
            schedparam: false,
            tslice_ms: None,
            ratelimit_us: None,
            migration_delay_us: None,
            cpupool: None
        }
    );
    assert_eq!(
        run("xl sched-credit --domain=web --weight=512"),
        run("xl sched-credit -dweb -w512")
    );
    assert_eq!(
        fail("xl sched-credit -w 5").stderr,
        "Must specify a domain.\n"
    );
    assert_eq!(
        fail("xl sched-credit -s -d web").stderr,
        "Specifying a cpupool or schedparam is not allowed with domain options.\n"
    );
    assert_eq!(
        fail("xl sched-credit -t 5").stderr,
        "Must specify schedparam to set schedule parameter values.\n"
    );
    // getopt reports a missing option argument as an unsupported option, as xl shows.
    assert_eq!(
        fail("xl sched-credit -d").stderr,
        "option `d' not supported.\n"
    );
}

#[test]
fn help_and_unknown() {
    assert_eq!(fail("xl frobnicate").stderr, "command not implemented\n");
    assert_eq!(fail("xl frobnicate").status, 1);
    assert_eq!(
        fail("xl s").stderr,
        "command not implemented\n",
        "ambiguous prefix"
    );
    assert_eq!(run("xl help"), Command::Help { command: None });
    assert_eq!(
        run("xl help list"),
        Command::Help {
            command: Some("list".into())
        }
    );
    let h = xl::help(None);
    assert!(h.starts_with("Usage xl [-vfNtT] <subcommand> [args]\n\nxl full list of subcommands:\n\n create              Create a domain from config file <filename>\n"));
    assert_eq!(xl::help(Some("nope")), "command \"nope\" not implemented\n");
    assert_eq!(fail("xl pause -h").stdout, xl::help(Some("pause")));
    assert_eq!(fail("xl pause -h").status, 0);
    assert_eq!(fail("xl").status, 1);
}

#[test]
fn network_commands() {
    assert_eq!(
        run("xl network-list web 3"),
        Command::NetworkList {
            domains: vec!["web".into(), "3".into()]
        }
    );
    assert_eq!(
        run("xl network-attach web mac=00:16:3e:00:00:01 bridge=xenbr0"),
        Command::NetworkAttach {
            domain: "web".into(),
            spec: vec!["mac=00:16:3e:00:00:01".into(), "bridge=xenbr0".into()]
        }
    );
    assert_eq!(
        run("xl network-detach web 00:16:3e:00:00:01"),
        Command::NetworkDetach {
            domain: "web".into(),
            dev: "00:16:3e:00:00:01".into()
        }
    );
    // xl's own minimum argument counts.
    assert_eq!(fail("xl network-detach web").status, 2);
    assert_eq!(fail("xl network-list").status, 2);
    assert_eq!(
        run("brctl showmacs xenbr0"),
        Command::NetTool {
            tool: "brctl".into(),
            args: vec!["showmacs".into(), "xenbr0".into()]
        }
    );
}

#[test]
fn not_yet() {
    assert_eq!(
        run("xl vtpm-attach web backend=0"),
        Command::NotYet {
            command: "vtpm-attach".into()
        }
    );
    assert_eq!(
        run("xl channel-list web"),
        Command::NotYet {
            command: "channel-list".into()
        }
    );
    assert_eq!(
        run("xenstore-watch /local"),
        Command::NotYet {
            command: "xenstore-watch".into()
        }
    );
    assert_eq!(
        xl::not_yet_message("xenstore-ls"),
        "xenstore-ls: not implemented yet in this toolstack\n"
    );
}

#[test]
fn words() {
    assert_eq!(
        xl::split_words("  a 'b c' \"d\\\"e\" f\\ g ").unwrap(),
        vec!["a", "b c", "d\"e", "f g"]
    );
    assert!(xl::split_words("a 'b").is_err());
    assert_eq!(xl::parse_line("   "), Parsed::Empty);
}

#[test]
fn find_domain() {
    struct R;
    impl xl::DomainResolver for R {
        fn domid_by_name(&self, n: &str) -> Option<u32> {
            (n == "web").then_some(3)
        }
    }
    use xl::DomainResolver;
    assert_eq!(R.find_domain("web"), Ok(3));
    assert_eq!(R.find_domain("7"), Ok(7));
    assert_eq!(
        R.find_domain("nope").unwrap_err(),
        "nope is an invalid domain identifier (rc=-6)"
    );
}

#[test]
fn xenctx_lines() {
    assert_eq!(
        run("xenctx -a 3 1"),
        Command::Xenctx {
            domid: "3".into(),
            vcpu: 1,
            all: true
        }
    );
    assert_eq!(
        run("xenctx 2"),
        Command::Xenctx {
            domid: "2".into(),
            vcpu: 0,
            all: false
        }
    );
    let f = fail("xenctx");
    assert_eq!((f.stderr.as_str(), f.status), (xl::XENCTX_USAGE, 2));
    assert!(fail("xenctx 1 x").stderr.contains("bad vcpu"));
    assert!(fail("xenctx -q 1").stderr.contains("unrecognized option"));
    assert_eq!(fail("xenctx -h").stdout, xl::XENCTX_USAGE);
}

#[test]
fn bench_create_lines() {
    assert_eq!(
        run("bench-create /etc/xen/hello.cfg 3"),
        Command::BenchCreate {
            config_file: "/etc/xen/hello.cfg".into(),
            rounds: 3
        }
    );
    assert_eq!(
        run("bench-create /etc/xen/hello.cfg"),
        Command::BenchCreate {
            config_file: "/etc/xen/hello.cfg".into(),
            rounds: 5
        }
    );
    assert!(fail("bench-create")
        .stderr
        .starts_with("usage: bench-create"));
    assert!(fail("bench-create f 0").stderr.starts_with("usage"));
    assert!(fail("bench-create f x").stderr.starts_with("usage"));
}

#[test]
fn block_devices() {
    assert_eq!(
        run("xl block-attach web format=raw, vdev=xvdb, target=/images/b.img"),
        Command::BlockAttach {
            domain: "web".into(),
            spec: vec![
                "format=raw,".into(),
                "vdev=xvdb,".into(),
                "target=/images/b.img".into()
            ]
        }
    );
    assert_eq!(
        run("xl block-list web db"),
        Command::BlockList {
            domains: vec!["web".into(), "db".into()]
        }
    );
    assert_eq!(
        run("xl block-detach -f web xvdb"),
        Command::BlockDetach {
            domain: "web".into(),
            dev: "xvdb".into(),
            force: true
        }
    );
    assert!(fail("xl block-detach web")
        .stderr
        .contains("requires at least 2 arguments"));
    assert!(fail("xl block-list")
        .stderr
        .contains("requires at least 1 argument"));
}

#[test]
fn xenstore_tools() {
    assert_eq!(
        run("xenstore-ls -fp /local"),
        Command::Xenstore {
            tool: "ls".into(),
            flags: "fp".into(),
            args: vec!["/local".into()]
        }
    );
    assert_eq!(
        run("xenstore-write /a 1 /b 2"),
        Command::Xenstore {
            tool: "write".into(),
            flags: "".into(),
            args: vec!["/a".into(), "1".into(), "/b".into(), "2".into()]
        }
    );
    assert!(fail("xenstore-write /a")
        .stderr
        .starts_with("Usage: xenstore-write"));
    assert!(fail("xenstore-read")
        .stderr
        .starts_with("Usage: xenstore-read"));
    assert!(fail("xenstore-ls -z")
        .stderr
        .starts_with("Usage: xenstore-ls"));
    assert_eq!(fail("xenstore-rm -h").status, 0);
}
