//! The hypervisor's command line: `console=com1 loglvl=info dom0_mem=256M`.
//!
//! Unknown options are kept and reported, not fatal, as Xen does.

/// Parsed options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// `loglvl=`: none, error, warning, info, debug, all.
    pub log_level: log::LevelFilter,
    /// `dom0_mem=`: dom0's memory in bytes (`None`: the default).
    pub dom0_mem: Option<u64>,
    /// `console=`: only `com1` (and `vga`, ignored under QEMU) are known.
    pub console_com1: bool,
    /// `maxcpus=`: bring up at most this many CPUs.
    pub max_cpus: Option<u32>,
    /// `selftest=fault`: fault on purpose after bring-up (tests the fatal path).
    pub selftest_fault: bool,
    /// `idle_poll_us=`: how long an idle CPU polls for an interrupt before halting
    /// (0: halt at once). Like KVM's `halt_poll_ns`, whose default this is.
    pub idle_poll_us: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            log_level: log::LevelFilter::Info,
            dom0_mem: None,
            console_com1: true,
            max_cpus: None,
            selftest_fault: false,
            idle_poll_us: 200,
        }
    }
}

/// Multiboot loaders put the image's file name first (`/boot/xen console=com1`):
/// drop a first word that is not an option, as Xen's `cmdline_cook` does.
pub fn skip_image_name(cmdline: &str) -> &str {
    let t = cmdline.trim_start();
    match t.split_once(char::is_whitespace) {
        Some((first, rest)) if !first.contains('=') => rest,
        None if !t.contains('=') => "",
        _ => t,
    }
}

/// Parse a size such as `256M`, `1G`, `65536K` or plain bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&s[..s.len() - 1], 1u64 << 20),
        b'g' | b'G' => (&s[..s.len() - 1], 1u64 << 30),
        b'b' | b'B' => (&s[..s.len() - 1], 1),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

fn parse_level(s: &str) -> Option<log::LevelFilter> {
    // Xen writes `loglvl=all` or `loglvl=info/warning`; the first part is what we use.
    let first = s.split('/').next().unwrap_or(s);
    Some(match first {
        "none" => log::LevelFilter::Off,
        "error" => log::LevelFilter::Error,
        "warning" | "warn" => log::LevelFilter::Warn,
        "info" => log::LevelFilter::Info,
        "debug" => log::LevelFilter::Debug,
        "all" | "trace" => log::LevelFilter::Trace,
        _ => return None,
    })
}

/// Parse the command line; `unknown` is called with each word not understood.
pub fn parse(cmdline: &str, mut unknown: impl FnMut(&str)) -> Options {
    let mut o = Options::default();
    for word in cmdline.split_ascii_whitespace() {
        let (key, val) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        match (key, val) {
            ("loglvl", Some(v)) => match parse_level(v) {
                Some(l) => o.log_level = l,
                None => unknown(word),
            },
            // dom0_mem=256M or dom0_mem=256M,max:512M: we take the first size.
            ("dom0_mem", Some(v)) => {
                let first = v.split(',').next().unwrap_or(v);
                match parse_size(first) {
                    Some(n) => o.dom0_mem = Some(n),
                    None => unknown(word),
                }
            }
            ("console", Some(v)) => o.console_com1 = v.split(',').any(|c| c == "com1"),
            ("selftest", Some("fault")) => o.selftest_fault = true,
            ("maxcpus", Some(v)) => match v.parse() {
                Ok(n) => o.max_cpus = Some(n),
                Err(_) => unknown(word),
            },
            // At most a second: a typo must not turn idle CPUs into spinning ones.
            ("idle_poll_us", Some(v)) => match v.parse::<u64>() {
                Ok(n) if n <= 1_000_000 => o.idle_poll_us = n,
                _ => unknown(word),
            },
            _ => unknown(word),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_name() {
        assert_eq!(skip_image_name("/boot/hv console=com1"), "console=com1");
        assert_eq!(skip_image_name("console=com1 x"), "console=com1 x");
        assert_eq!(skip_image_name("/boot/hv"), "");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256M"), Some(256 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("99999999999999999G"), None);
    }

    #[test]
    fn options() {
        let mut bad = Vec::new();
        let o = parse(
            "console=com1 loglvl=debug dom0_mem=64M,max:128M maxcpus=2 frob idle_poll_us=0 \
             idle_poll_us=2000000",
            |w| bad.push(w.to_string()),
        );
        assert_eq!(o.log_level, log::LevelFilter::Debug);
        assert_eq!(o.dom0_mem, Some(64 << 20));
        assert_eq!(o.max_cpus, Some(2));
        assert!(o.console_com1);
        assert_eq!(o.idle_poll_us, 0);
        assert_eq!(
            bad,
            vec!["frob".to_string(), "idle_poll_us=2000000".to_string()]
        );
        assert_eq!(parse("", |_| {}).idle_poll_us, 200);
    }
}
