//! The `xl.cfg` parser: real configs, libxlu's error messages, xl's semantics.

use dom0_tools::cfg::{self, Action, Affinity, CpuSet, DomainConfig, Value};
use proptest::prelude::*;

fn no_nodes(n: usize) -> Option<CpuSet> {
    (n == 0).then(CpuSet::all)
}

fn domain(text: &str) -> (Result<DomainConfig, cfg::ConfigError>, Vec<String>) {
    let c = cfg::parse("t.cfg", text.as_bytes()).expect("parses");
    let mut w = Vec::new();
    (DomainConfig::from_config(&c, &no_nodes, &mut w), w)
}

/// Inputs and what libxlu 4.17 prints for them (Xen's own parser, built on the host and
/// run on each input), minus xl's final "Failed to parse config" line. One deliberate
/// difference: where libxlu says line N-1 for an unexpected end of line N, we say N.
const LIBXLU_ERRORS: &[(&str, &str)] = &[
    ("name = \"a\" b = 1\n", "t.cfg:1: config parsing error near `b': syntax error, unexpected IDENT, expecting $end\n"),
    ("name \"a\"\n", "t.cfg:1: config parsing error near `\"a\"': syntax error, unexpected STRING, expecting += or '='\n"),
    ("name = \n", "t.cfg:1: config parsing error near <newline>: syntax error, unexpected NEWLINE, expecting STRING or NUMBER or '['\n"),
    ("name = [ \"a\", \n", "t.cfg:1: config parsing error near `': syntax error, unexpected $end, expecting ']'\n"),
    ("name = [ \"a\" \"b\" ]\n", "t.cfg:1: config parsing error near `\"b\"': syntax error, unexpected STRING, expecting ']'\n"),
    ("= 3\n", "t.cfg:1: config parsing error near `=': syntax error, unexpected '=', expecting $end or IDENT or NEWLINE or ';'\n"),
    ("name = \"abc\n", "t.cfg:1: config parsing error near `\"abc': lexical error\n"),
    ("x = 1\nname = \"a\"\nfoo = ]\nbar = 2\n", "t.cfg:3: config parsing error near `]': syntax error, unexpected ']', expecting STRING or NUMBER or '['\n"),
    ("Name = 1\n", "t.cfg:1: config parsing error near `Name': lexical error\n"),
    ("a = 1 +\n", "t.cfg:1: config parsing error near `+': lexical error\nwarning: Config file looks like it contains Python code.\nwarning:  Arbitrary Python is no longer supported.\nwarning:  See https://wiki.xen.org/wiki/PythonInXlConfig\n"),
    ("a = \"x\\qy\"\n", "t.cfg:1: config parsing error near `\"x\\qy\"': invalid character after backlash in quoted string\n"),
    ("a = \"x\\x41\"\n", "t.cfg:1: config parsing error near `\"x\\x41\"': invalid digit after backslash hexnumerical character escape in quoted string\n"),
    ("a = \"p\"\na += \"q\"\nextra=a\n", "t.cfg:3: config parsing error near `a': syntax error, unexpected IDENT, expecting STRING or NUMBER or '['\n"),
    ("[\n", "t.cfg:1: config parsing error near `[': syntax error, unexpected '[', expecting $end or IDENT or NEWLINE or ';'\n"),
    ("name = \"x\"\n\n\nvcpus = ,\n", "t.cfg:4: config parsing error near `,': syntax error, unexpected ',', expecting STRING or NUMBER or '['\n"),
    ("name = \"a\"\nfoo = ]\nx=1\ny=2\nz=3\nbar = [\n", "t.cfg:2: config parsing error near `]': syntax error, unexpected ']', expecting STRING or NUMBER or '['\nt.cfg:6: config parsing error near `': syntax error, unexpected $end, expecting ']'\n"),
    ("name = 1 2\n", "t.cfg:1: config parsing error near `2': syntax error, unexpected NUMBER, expecting $end\n"),
    ("name\n", "t.cfg:1: config parsing error near <newline>: syntax error, unexpected NEWLINE, expecting += or '='\n"),
    ("name =\n\"a\"\n", "t.cfg:1: config parsing error near <newline>: syntax error, unexpected NEWLINE, expecting STRING or NUMBER or '['\n"),
    ("name = [ \"a\", , \"b\" ]\n", "t.cfg:1: config parsing error near `,': syntax error, unexpected ',', expecting ']'\n"),
    ("n-ame = 1\nvcpus=2\n", "t.cfg:1: config parsing error near `-ame': lexical error\nwarning: Config file looks like it contains Python code.\nwarning:  Arbitrary Python is no longer supported.\nwarning:  See https://wiki.xen.org/wiki/PythonInXlConfig\n"),
    ("name = \"a\" # c\nx = 1 ] \n", "t.cfg:2: config parsing error near `]': syntax error, unexpected ']', expecting $end\n"),
    ("x = 1\n\n  y  =  @@@ z\n", "t.cfg:3: config parsing error near `@@@': lexical error\n"),
    ("x=1.5\n", "t.cfg:1: config parsing error near `.5': lexical error\nwarning: Config file looks like it contains Python code.\nwarning:  Arbitrary Python is no longer supported.\nwarning:  See https://wiki.xen.org/wiki/PythonInXlConfig\n"),
    ("x = -1\n", "t.cfg:1: config parsing error near `-1': lexical error\nwarning: Config file looks like it contains Python code.\nwarning:  Arbitrary Python is no longer supported.\nwarning:  See https://wiki.xen.org/wiki/PythonInXlConfig\n"),
    ("x = 1 # c", "t.cfg:1: config parsing error near `#': lexical error\n"),
    ("x = 1\n= 2\n= 3\ny = 4 5\n", "t.cfg:2: config parsing error near `=': syntax error, unexpected '=', expecting $end or IDENT or NEWLINE or ';'\nt.cfg:4: config parsing error near `5': syntax error, unexpected NUMBER, expecting $end\n"),
    ("llc-colors = \"9-13\"\n", "t.cfg:1: config parsing error near `-colors': lexical error\nwarning: Config file looks like it contains Python code.\nwarning:  Arbitrary Python is no longer supported.\nwarning:  See https://wiki.xen.org/wiki/PythonInXlConfig\n"),
    ("a = \"\\1x\"\n", "t.cfg:1: config parsing error near `\"\\1x\"': invalid digit after backslash octalnumerical character escape in quoted string\n"),
    ("a = [ \"x\" ]\na += \"y\"\n", "t.cfg:2: config parsing error near `\"y\"': can't add [list] to \"string\" or vice versa\n"),
    ("a = ( 1 )\n", "t.cfg:1: config parsing error near `(': lexical error\nt.cfg:1: config parsing error near `)': lexical error\nwarning: Config file looks like it contains Python code.\nwarning:  Arbitrary Python is no longer supported.\nwarning:  See https://wiki.xen.org/wiki/PythonInXlConfig\n"),
    ("kernel = \"/boot/k\" memory = 3\n", "t.cfg:1: config parsing error near `memory': syntax error, unexpected IDENT, expecting $end\n"),
];

#[test]
fn errors_read_like_libxlu() {
    for (input, expected) in LIBXLU_ERRORS {
        let e = cfg::parse("t.cfg", input.as_bytes()).expect_err(input);
        assert_eq!(e.to_string(), *expected, "input {input:?}");
    }
}

/// tools/examples/xlexample.pvlinux from Xen 4.17.
const XLEXAMPLE_PVLINUX: &str = r#"# =====================================================================
# Example PV Linux guest configuration
# =====================================================================
#
# This is a fairly minimal example of what is required for a
# Paravirtualised Linux guest. For a more complete guide see xl.cfg(5)

# Guest name
name = "example.pvlinux"

# 128-bit UUID for the domain as a hexadecimal number.
# Use "uuidgen" to generate one if required.
# The default behavior is to generate a new UUID each time the guest is started.
#uuid = "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX"

# Kernel image to boot
kernel = "/boot/vmlinuz"

# Ramdisk (optional)
#ramdisk = "/boot/initrd.gz"

# Kernel command line options
extra = "root=/dev/xvda1"

# Initial memory allocation (MB)
memory = 128

# Maximum memory (MB)
# If this is greater than `memory' then the slack will start ballooned
# (this assumes guest kernel support for ballooning)
#maxmem = 512

# Number of VCPUS
vcpus = 2

# Network devices
# A list of 'vifspec' entries as described in
# docs/misc/xl-network-configuration.markdown
vif = [ '' ]

# Disk Devices
# A list of `diskspec' entries as described in
# docs/misc/xl-disk-configuration.txt
disk = [ '/dev/vg/guest-volume,raw,xvda,rw' ]
"#;

#[test]
fn xen_example_pvlinux() {
    let (d, w) = domain(XLEXAMPLE_PVLINUX);
    let d = d.expect("valid");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(d.name, "example.pvlinux");
    assert_eq!(d.kernel, "/boot/vmlinuz");
    assert_eq!(d.cmdline.as_deref(), Some("root=/dev/xvda1"));
    assert_eq!((d.target_memkb, d.max_memkb), (128 * 1024, 128 * 1024));
    assert_eq!((d.vcpus, d.max_vcpus), (2, 2));
    assert_eq!(d.vifs, vec![String::new()]);
    assert_eq!(
        d.disks,
        vec!["/dev/vg/guest-volume,raw,xvda,rw".to_string()]
    );
    assert_eq!(
        (d.on_poweroff, d.on_reboot, d.on_crash),
        (Action::Destroy, Action::Restart, Action::Destroy)
    );
}

#[test]
fn man_page_syntax() {
    // xl.cfg(5): "Pairs may be separated either by a newline or a semicolon".
    let c = cfg::parse("t.cfg", b"name=\"h0\"; type=\"pv\"\n").unwrap();
    assert_eq!(c.get_string("name"), Ok("h0"));
    assert_eq!(c.get_string("type"), Ok("pv"));
    // Lists over several lines, nested and heterogeneous, trailing comma.
    let c = cfg::parse(
        "t.cfg",
        b"cpus = [ \"2\",\n   \"3-8,^5\",\n\n ]\nx = [ [ 'a', 1 ], \"b\" ]\n",
    )
    .unwrap();
    assert_eq!(
        c.get_list("cpus").unwrap(),
        &[Value::Atom("2".into()), Value::Atom("3-8,^5".into())]
    );
    assert_eq!(c.get_list("x").unwrap().len(), 2);
    // Numbers: decimal, octal, hex; escapes in strings.
    let c = cfg::parse("t.cfg", b"a = 0x10\nb = 010\nc = 'it\\'s'\nd = \"x\\ty\"\n").unwrap();
    assert_eq!(c.get_long("a"), Ok(16));
    assert_eq!(c.get_long("b"), Ok(8));
    assert_eq!(c.get_string("c"), Ok("it's"));
    assert_eq!(c.get_string("d"), Ok("x\ty"));
    // No final newline is fine; += concatenates; the last setting wins.
    let c = cfg::parse("t.cfg", b"e = \"a\"\ne += \"b\"\nf = 1\nf = 2").unwrap();
    assert_eq!(c.get_string("e"), Ok("ab"));
    assert_eq!(c.get_long("f"), Ok(2));
}

#[test]
fn defaults_are_xls() {
    let (d, _) = domain("name = \"d\"\nkernel = \"/k\"\n");
    let d = d.unwrap();
    // libxl: max_memkb 32 MiB, target = max; one vCPU.
    assert_eq!((d.target_memkb, d.max_memkb), (32768, 32768));
    assert_eq!((d.vcpus, d.max_vcpus), (1, 1));
    assert_eq!(d.cpus, Affinity::Unset);
    assert_eq!(d.on_soft_reset, Action::SoftReset);
    let (d, _) = domain("name='d'\nkernel='/k'\nmaxmem=512\nmaxvcpus=4\n");
    let d = d.unwrap();
    assert_eq!((d.target_memkb, d.max_memkb), (512 * 1024, 512 * 1024));
    assert_eq!((d.vcpus, d.max_vcpus), (1, 4));
}

#[test]
fn overrides_from_the_command_line() {
    let c = cfg::parse_with_overrides(
        "web.cfg",
        b"name = \"web\"\nkernel = \"/k\"\nmemory = 64\n",
        &["memory=256", "name=\"web2\""],
    )
    .unwrap();
    let mut w = Vec::new();
    let d = DomainConfig::from_config(&c, &no_nodes, &mut w).unwrap();
    assert_eq!(d.target_memkb, 256 * 1024);
    assert_eq!(d.name, "web2");
    // An error in an override names its line past the file's end, as xl does.
    let e = cfg::parse_with_overrides("web.cfg", b"name = \"web\"\n", &["memory=="]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "web.cfg:3: config parsing error near `=': syntax error, unexpected '=', expecting STRING or NUMBER or '['\n"
    );
}

#[test]
fn cmdline_root_extra() {
    let (d, w) = domain("name='d'\nkernel='/k'\nroot='/dev/xvda1 ro'\nextra='quiet'\n");
    assert_eq!(
        d.unwrap().cmdline.as_deref(),
        Some("root=/dev/xvda1 ro quiet")
    );
    assert!(w.is_empty());
    let (d, w) = domain("name='d'\nkernel='/k'\ncmdline='a b'\nextra='quiet'\n");
    assert_eq!(d.unwrap().cmdline.as_deref(), Some("a b"));
    assert_eq!(
        w,
        vec!["Warning: ignoring root= and extra= in favour of cmdline=".to_string()]
    );
}

#[test]
fn xl_errors_and_warnings() {
    let err = |t: &str| domain(t).0.unwrap_err().0;
    assert_eq!(err("kernel='/k'\n"), "Domain name must be specified.");
    assert_eq!(
        err("name='d'\nkernel='/k'\non_crash='explode'\n"),
        "Unknown on_crash action \"explode\" specified"
    );
    assert_eq!(
        err("name='d'\nkernel='/k'\nvcpus=4\nmaxvcpus=2\n"),
        "xl: maxvcpus < vcpus"
    );
    assert_eq!(
        err("name='d'\nkernel='/k'\ntype='xyz'\n"),
        "Invalid domain type xyz."
    );
    assert!(err("name='d'\nkernel='/k'\ntype='hvm'\n").contains("not supported"));
    assert_eq!(
        err("name='d'\nkernel='/k'\ncpus='0-3,x'\n"),
        "Invalid pcpu range: x."
    );
    assert_eq!(
        err("name='d'\nkernel='/k'\ncpus='^all'\n"),
        "Can't combine \"^\" and \"all\"."
    );
    // Bad numbers are warnings and the default applies, as in xl.
    let (d, w) = domain("name='d'\nkernel='/k'\nmemory='lots'\nvcpus=[1]\nfoo=1\nvnc=1\n");
    let d = d.unwrap();
    assert_eq!(d.target_memkb, 32768);
    assert_eq!(
        w,
        vec![
            "t.cfg:3: warning: parameter `memory' is not a valid number".to_string(),
            "t.cfg:4: warning: parameter `vcpus' is a list but should be a single value".into(),
            "t.cfg:5: warning: unknown parameter `foo' ignored".into(),
            "t.cfg:6: warning: parameter `vnc' is not supported by this toolstack and is ignored"
                .into(),
        ]
    );
    let (_, w) = domain("name='d'\nkernel='/k'\nmemory=1\nmemory+=2\n");
    assert_eq!(
        w,
        vec!["t.cfg:4: warning: can't use += with numbers for parameter `memory'".to_string()]
    );
}

#[test]
fn actions() {
    for a in Action::ALL {
        let t = format!("name='d'\nkernel='/k'\non_poweroff='{}'\n", a.cfg_name());
        assert_eq!(domain(&t).0.unwrap().on_poweroff, a);
    }
}

#[test]
fn cpu_lists() {
    let p = |s: &str| CpuSet::parse(s, &no_nodes).map(|c| c.iter().collect::<Vec<_>>());
    assert_eq!(p("0-3,5,^1"), Ok(vec![0, 2, 3, 5]));
    assert_eq!(p("all,^7").unwrap().len(), cfg::MAX_CPUS - 1);
    assert_eq!(p("3"), Ok(vec![3]));
    assert!(p("3-1").is_err());
    assert!(p("1-").is_err());
    assert_eq!(p("0-99999999999"), p("0-300")); // bounded, no long walk
    assert_eq!(p("node:1").unwrap_err(), "libxl_node_to_cpumap failed.");
    let (d, _) = domain("name='d'\nkernel='/k'\nvcpus=2\ncpus=['2', '3-8,^5', '9']\n");
    let d = d.unwrap();
    // Entries past the last vCPU are ignored.
    match &d.cpus {
        Affinity::PerVcpu(v) => assert_eq!(v.len(), 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        d.cpus.for_vcpu(1).unwrap().iter().collect::<Vec<_>>(),
        vec![3, 4, 6, 7, 8]
    );
    let mut s = CpuSet::none();
    assert_eq!(s.to_xl_string(4), "none");
    for c in [0, 1, 2, 3] {
        s.set(c);
    }
    assert_eq!(s.to_xl_string(4), "all");
    assert_eq!(s.to_xl_string(8), "0-3");
    s.clear(1);
    s.set(6);
    assert_eq!(s.to_xl_string(8), "0,2-3,6");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(c) = cfg::parse("p.cfg", &bytes) {
            let mut w = Vec::new();
            let _ = DomainConfig::from_config(&c, &no_nodes, &mut w);
        }
    }

    #[test]
    fn never_panics_on_config_like_text(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("name"), Just("cpus"), Just("memory"), Just("vcpus"), Just("kernel"),
                Just("="), Just("+="), Just("["), Just("]"), Just(","), Just(";"), Just("\n"),
                Just("#x\n"), Just("'a'"), Just("\"0-3,^1\""), Just("12"), Just("0x"),
                Just("\"\\1\""), Just("\"\\x\""), Just("-"), Just(" "), Just("'"), Just("\""),
            ],
            0..60,
        )
    ) {
        let text: String = parts.concat();
        match cfg::parse("p.cfg", text.as_bytes()) {
            Ok(c) => {
                let mut w = Vec::new();
                let _ = DomainConfig::from_config(&c, &no_nodes, &mut w);
            }
            Err(e) => prop_assert!(!e.errors.is_empty()),
        }
    }
}
