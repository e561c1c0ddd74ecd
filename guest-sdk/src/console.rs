//! Console output, and `print!`/`println!`: through `console_io` for dom0, through the
//! console ring (`conring`) for a domU.

use core::fmt;

/// Write bytes to the hypervisor console, retrying on partial failure is not needed:
/// `CONSOLEIO_write` consumes the whole buffer.
pub fn write_bytes(bytes: &[u8]) {
    // A domU prints on its console ring (dom0's backend shows it with `xl console`).
    if let Some(ring) = crate::conring::ring() {
        ring.write(bytes);
        return;
    }
    // Chunk so one call never asks the hypervisor to copy more than a page.
    for chunk in bytes.chunks(1024) {
        let _ = crate::hypercall::console_write(chunk);
    }
}

/// A `fmt::Write` that buffers on the stack and flushes at newlines and when full, so a
/// `println!` is usually one hypercall and lines of different vCPUs rarely interleave.
pub struct Writer {
    buf: [u8; 256],
    len: usize,
}

impl Writer {
    /// An empty writer.
    pub const fn new() -> Self {
        Writer {
            buf: [0; 256],
            len: 0,
        }
    }

    /// Send what is buffered.
    pub fn flush(&mut self) {
        if let Some(pending) = self.buf.get(..self.len) {
            write_bytes(pending);
        }
        self.len = 0;
    }
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
            if b == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.flush();
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    let mut w = Writer::new();
    let _ = fmt::write(&mut w, args);
    w.flush();
}

/// Print to the hypervisor console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

/// Print a line to the hypervisor console.
#[macro_export]
macro_rules! println {
    () => { $crate::console::_print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// The bytes of a NUL-terminated C string in a fixed buffer, up to the first NUL.
pub fn c_str(buf: &[u8]) -> &[u8] {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    buf.get(..end).unwrap_or(buf)
}

/// A displayable view of bytes that are expected to be ASCII (others print as `?`).
pub struct Ascii<'a>(pub &'a [u8]);

impl fmt::Display for Ascii<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        for &b in self.0 {
            let c = if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            };
            f.write_char(c)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_str_stops_at_nul() {
        assert_eq!(c_str(b"4.17\0junk"), b"4.17");
        assert_eq!(c_str(b"full"), b"full");
        assert_eq!(format!("{}", Ascii(b"a\x01b")), "a?b");
    }
}
