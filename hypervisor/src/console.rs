//! The hypervisor's console: COM1 through `uart_16550`, and the `log` backend.
//!
//! Lines are `(XEN) [cpu][level target] msg`-like: `[hv cpuN L target] msg`.

use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::SerialPort;

/// COM1, the hypervisor's console. Lock order: taken last (nothing is locked inside it).
static COM1: Mutex<Option<SerialPort>> = Mutex::new(None);

/// The console history (`xl dmesg`): the last `HISTORY_SIZE` bytes written, with
/// free-running indices as Xen's conring has.
pub const HISTORY_SIZE: usize = 16 * 1024;

pub struct History {
    buf: [u8; HISTORY_SIZE],
    /// Total bytes ever written.
    prod: u32,
    /// Oldest byte still readable (moved by overwrite and by `clear`).
    start: u32,
}

pub static HISTORY: Mutex<History> = Mutex::new(History {
    buf: [0; HISTORY_SIZE],
    prod: 0,
    start: 0,
});

impl History {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if let Some(slot) = self.buf.get_mut(self.prod as usize % HISTORY_SIZE) {
                *slot = b;
            }
            self.prod = self.prod.wrapping_add(1);
        }
        if self.prod.wrapping_sub(self.start) as usize > HISTORY_SIZE {
            self.start = self.prod.wrapping_sub(HISTORY_SIZE as u32);
        }
    }

    /// Xen's `read_console_ring`: from `index` if incremental (and still readable), else
    /// from the oldest byte; returns (bytes copied, next index).
    pub fn read(
        &mut self,
        out: &mut [u8],
        incremental: bool,
        index: u32,
        clear: bool,
    ) -> (usize, u32) {
        let mut c = self.start;
        if incremental
            && (index.wrapping_sub(c) as i32) > 0
            && (self.prod.wrapping_sub(index) as i32) >= 0
        {
            c = index;
        }
        let mut n = 0;
        while c != self.prod && n < out.len() {
            if let (Some(o), Some(&b)) = (out.get_mut(n), self.buf.get(c as usize % HISTORY_SIZE)) {
                *o = b;
            }
            c = c.wrapping_add(1);
            n += 1;
        }
        if clear {
            self.start = self.prod;
        }
        (n, c)
    }
}

fn record(bytes: &[u8]) {
    // Lock order: taken after COM1's lock, and nothing is taken inside it.
    HISTORY.lock().push(bytes);
}

/// Set up COM1 (115200 8N1, FIFOs on).
pub fn init() {
    // SAFETY: 0x3F8 is COM1's standard I/O base; the hypervisor is the only code that
    // drives it (guests never get I/O access to it), and this runs once at boot.
    let mut port = unsafe { SerialPort::new(0x3F8) };
    port.init();
    *COM1.lock() = Some(port);
}

/// Write raw bytes to the console (`\n` becomes `\r\n`).
pub fn write_bytes(bytes: &[u8]) {
    record(bytes);
    let mut guard = COM1.lock();
    if let Some(port) = guard.as_mut() {
        for &b in bytes {
            if b == b'\n' {
                port.send(b'\r');
            }
            port.send(b);
        }
    }
}

/// Write to the console without taking the lock: for the panic path only, where the
/// lock may be held by the CPU that faulted.
pub fn write_bytes_unlocked(bytes: &[u8]) {
    // SAFETY: same port as `init`; a racing writer can only interleave characters,
    // which is acceptable when the machine is going down.
    let mut port = unsafe { SerialPort::new(0x3F8) };
    for &b in bytes {
        if b == b'\n' {
            port.send(b'\r');
        }
        port.send(b);
    }
}

/// Output of the hardware domain's `console_io` write: raw, as Xen prints it.
pub fn write_guest(bytes: &[u8]) {
    record(bytes);
    let mut guard = COM1.lock();
    if let Some(port) = guard.as_mut() {
        for &b in bytes {
            if b == b'\n' {
                port.send(b'\r');
            }
            // Control characters other than newline, tab, CR and backspace would let a
            // guest drive the terminal: show them as '?'.
            let c = if b >= 0x20 || matches!(b, b'\n' | b'\t' | b'\r' | 0x08) {
                b
            } else {
                b'?'
            };
            port.send(c);
        }
    }
}

/// Whether a byte typed on COM1 is waiting.
pub fn input_ready() -> bool {
    // SAFETY: reading COM1's line-status register has no effect on memory.
    let lsr: u8 = unsafe { x86_64::instructions::port::Port::new(0x3fd).read() };
    lsr & 1 != 0
}

/// Read what has been typed on COM1 (non-blocking); returns the byte count.
pub fn read_input(buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        // SAFETY: reading COM1's line-status and receive registers has no effect on
        // memory; the hypervisor owns the port.
        let lsr: u8 = unsafe { x86_64::instructions::port::Port::new(0x3fd).read() };
        if lsr & 1 == 0 {
            break;
        }
        // SAFETY: as above.
        buf[n] = unsafe { x86_64::instructions::port::Port::new(0x3f8).read() };
        n += 1;
    }
    n
}

pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

pub struct PanicConsole;

impl Write for PanicConsole {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes_unlocked(s.as_bytes());
        Ok(())
    }
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::console::Console, $($arg)*);
    }};
}

struct Logger;

static LOGGER: Logger = Logger;
static MAX_LEVEL: spin::Once<log::LevelFilter> = spin::Once::new();

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let cpu = crate::arch::cpu::current_id();
        // One formatted line per lock hold, so lines of different CPUs don't interleave.
        let mut line = heapless_line::Line::new();
        let _ = writeln!(
            line,
            "(hv) [cpu{} {} {}] {}",
            cpu,
            level_char(record.level()),
            record.target(),
            record.args()
        );
        write_bytes(line.as_bytes());
    }

    fn flush(&self) {}
}

fn level_char(l: log::Level) -> char {
    match l {
        log::Level::Error => 'E',
        log::Level::Warn => 'W',
        log::Level::Info => 'I',
        log::Level::Debug => 'D',
        log::Level::Trace => 'T',
    }
}

/// Install the logger at `level`.
pub fn init_log(level: log::LevelFilter) {
    MAX_LEVEL.call_once(|| level);
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

mod heapless_line {
    //! A fixed 256-byte line buffer; longer lines are cut with `...`.
    pub struct Line {
        buf: [u8; 256],
        len: usize,
        cut: bool,
    }

    impl Line {
        pub const fn new() -> Self {
            Self {
                buf: [0; 256],
                len: 0,
                cut: false,
            }
        }
        pub fn as_bytes(&self) -> &[u8] {
            &self.buf[..self.len]
        }
    }

    impl core::fmt::Write for Line {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            for &b in s.as_bytes() {
                if self.len < self.buf.len() - 4 {
                    self.buf[self.len] = b;
                    self.len += 1;
                } else if !self.cut {
                    self.cut = true;
                    self.buf[self.len..self.len + 4].copy_from_slice(b"...\n");
                    self.len += 4;
                }
            }
            Ok(())
        }
    }
}
