//! Console output for the `pingpong` and `crasher` example guests: whole lines through
//! the SDK's console (the console ring in a domU, what `xl console` shows), plus a small
//! command-line parser.

use core::fmt::Write;
use guest_sdk::StartInfo;

/// The domain's console (the SDK finds the ring in `start_info`).
pub struct Ring;

impl Ring {
    /// The console the domain builder set up.
    pub fn from_start_info(_si: &StartInfo) -> Ring {
        Ring
    }

    /// One formatted line (`\r\n` added), through the SDK's console (the console
    /// ring in a domU, `console_io` in dom0), so it is written once.
    pub fn say(&self, args: core::fmt::Arguments) {
        let mut l = Line([0; 160], 0);
        let _ = l.write_fmt(args);
        let _ = l.write_str("\r\n");
        guest_sdk::console::write_bytes(l.0.get(..l.1).unwrap_or(&[]));
    }
}

struct Line([u8; 160], usize);

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if let Some(slot) = self.0.get_mut(self.1) {
                *slot = b;
                self.1 += 1;
            }
        }
        Ok(())
    }
}

/// The value of `key=` in a whitespace-separated command line.
pub fn arg<'a>(cmdline: &'a [u8], key: &str) -> Option<&'a [u8]> {
    cmdline
        .split(|&b| b == b' ' || b == 0)
        .find_map(|w| w.strip_prefix(key.as_bytes())?.strip_prefix(b"="))
}

/// A decimal number.
pub fn num(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}
