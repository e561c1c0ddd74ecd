//! The dom0 console's line editor and console-attach switch, as a pure state machine:
//! bytes in, [`Action`]s out. The caller prints, runs command lines and moves bytes to and
//! from a guest's console.
//!
//! Command mode: printable characters are echoed and collected; Enter (CR or LF, CRLF
//! counted once) runs the line; Backspace/DEL erase a character, Ctrl-W a word, Ctrl-U
//! the line; Ctrl-C abandons the line (`^C`); Ctrl-L redraws it; escape sequences (arrow
//! keys) are swallowed; anything else rings the bell.
//!
//! Console mode (after [`Shell::attach`], as `xl console` does): every byte goes to the
//! guest, except Ctrl-] (0x1d), which detaches and returns to the prompt, as xenconsole.

use alloc::string::String;
use alloc::vec::Vec;

/// Ctrl-]: leaves a guest console.
pub const DETACH: u8 = 0x1d;
/// Longest command line accepted.
pub const MAX_LINE: usize = 1024;

/// What the caller has to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to dom0's console.
    Echo(Vec<u8>),
    /// Run this command line; call [`Shell::prompt`] when its output is done (unless it
    /// attached a console).
    Run(String),
    /// Send these bytes to the attached guest's console.
    ToGuest {
        /// The guest.
        domid: u32,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The console of `domid` was left with Ctrl-]; the prompt has been echoed.
    Detached {
        /// The guest.
        domid: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Command,
    /// After ESC.
    Escape,
    /// Inside `ESC [ ...` until a final byte.
    Csi,
    Console(u32),
}

/// The shell's state.
#[derive(Debug, Clone)]
pub struct Shell {
    prompt: String,
    line: Vec<u8>,
    mode: Mode,
    last_cr: bool,
    pending: Vec<u8>,
}

impl Shell {
    /// A shell showing `prompt` (e.g. `"dom0# "`).
    pub fn new(prompt: &str) -> Shell {
        Shell {
            prompt: prompt.into(),
            line: Vec::new(),
            mode: Mode::Command,
            last_cr: false,
            pending: Vec::new(),
        }
    }

    /// The prompt's bytes, to print at start and after each command's output.
    pub fn prompt(&self) -> Vec<u8> {
        self.prompt.as_bytes().to_vec()
    }

    /// The line typed so far.
    pub fn line(&self) -> &[u8] {
        &self.line
    }

    /// The attached guest, if in console mode.
    pub fn attached(&self) -> Option<u32> {
        match self.mode {
            Mode::Console(d) => Some(d),
            _ => None,
        }
    }

    /// Switches to console mode for `domid` (`xl console`, `xl create -c`).
    pub fn attach(&mut self, domid: u32) {
        self.line.clear();
        self.mode = Mode::Console(domid);
    }

    /// Leaves console mode without a key (the guest died): echoes a newline and the prompt.
    pub fn detach(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if let Mode::Console(domid) = self.mode {
            self.mode = Mode::Command;
            let mut e = b"\r\n".to_vec();
            e.extend_from_slice(self.prompt.as_bytes());
            out.push(Action::Echo(e));
            out.push(Action::Detached { domid });
        }
        out
    }

    /// Feeds input bytes; returns what to do, in order.
    ///
    /// Processing stops right after an [`Action::Run`]: the rest of the input is kept, so
    /// that a command that attaches a console ([`Shell::attach`]) gets the bytes typed
    /// after it. Call `feed(&[])` after handling the command to go on ([`Shell::pending`]
    /// tells whether there is more).
    pub fn feed(&mut self, input: &[u8]) -> Vec<Action> {
        self.pending.extend_from_slice(input);
        let mut out = Vec::new();
        let mut echo: Vec<u8> = Vec::new();
        let mut guest: Vec<u8> = Vec::new();
        let mut used = 0;
        while let Some(&b) = self.pending.get(used) {
            used += 1;
            if let Mode::Console(domid) = self.mode {
                if b == DETACH {
                    if !guest.is_empty() {
                        out.push(Action::ToGuest {
                            domid,
                            bytes: core::mem::take(&mut guest),
                        });
                    }
                    out.extend(self.detach());
                } else {
                    guest.push(b);
                }
                continue;
            }
            if self.step(b, &mut echo, &mut out) {
                break;
            }
        }
        self.pending.drain(..used);
        if !echo.is_empty() {
            out.push(Action::Echo(echo));
        }
        if let (Mode::Console(domid), false) = (self.mode, guest.is_empty()) {
            out.push(Action::ToGuest {
                domid,
                bytes: guest,
            });
        }
        out
    }

    /// Whether input is waiting behind a command line that was just run.
    pub fn pending(&self) -> bool {
        !self.pending.is_empty()
    }

    fn flush(echo: &mut Vec<u8>, out: &mut Vec<Action>) {
        if !echo.is_empty() {
            out.push(Action::Echo(core::mem::take(echo)));
        }
    }

    fn erase(&mut self, n: usize, echo: &mut Vec<u8>) {
        for _ in 0..n {
            if self.line.pop().is_some() {
                echo.extend_from_slice(b"\x08 \x08");
            }
        }
    }

    /// Handles one byte in command mode; true when a line was run.
    fn step(&mut self, b: u8, echo: &mut Vec<u8>, out: &mut Vec<Action>) -> bool {
        let was_cr = core::mem::replace(&mut self.last_cr, false);
        match self.mode {
            Mode::Escape => {
                self.mode = if b == b'[' || b == b'O' {
                    Mode::Csi
                } else {
                    Mode::Command
                };
                return false;
            }
            Mode::Csi => {
                if (0x40..=0x7e).contains(&b) {
                    self.mode = Mode::Command;
                }
                return false;
            }
            Mode::Console(_) | Mode::Command => {}
        }
        match b {
            b'\r' | b'\n' => {
                if b == b'\n' && was_cr {
                    return false;
                }
                self.last_cr = b == b'\r';
                echo.extend_from_slice(b"\r\n");
                let line = String::from_utf8_lossy(&self.line).into_owned();
                self.line.clear();
                if line.trim().is_empty() {
                    echo.extend_from_slice(self.prompt.as_bytes());
                } else {
                    Self::flush(echo, out);
                    out.push(Action::Run(line));
                    return true;
                }
            }
            0x08 | 0x7f => self.erase(1, echo),
            0x15 => {
                let n = self.line.len();
                self.erase(n, echo);
            }
            0x17 => {
                // Ctrl-W: blanks, then the word before them.
                let blanks = self.line.iter().rev().take_while(|c| **c == b' ').count();
                let word = self
                    .line
                    .iter()
                    .rev()
                    .skip(blanks)
                    .take_while(|c| **c != b' ')
                    .count();
                self.erase(blanks + word, echo);
            }
            0x03 => {
                self.line.clear();
                echo.extend_from_slice(b"^C\r\n");
                echo.extend_from_slice(self.prompt.as_bytes());
            }
            0x0c => {
                echo.extend_from_slice(b"\r\n");
                echo.extend_from_slice(self.prompt.as_bytes());
                echo.extend_from_slice(&self.line);
            }
            0x1b => self.mode = Mode::Escape,
            b'\t' | 0x20..=0x7e => {
                let c = if b == b'\t' { b' ' } else { b };
                if self.line.len() < MAX_LINE {
                    self.line.push(c);
                    echo.push(c);
                } else {
                    echo.push(0x07);
                }
            }
            _ => echo.push(0x07),
        }
        false
    }
}
