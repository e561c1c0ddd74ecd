//! The PV console ring's index arithmetic (`xen/include/public/io/console.h`), for the
//! backend in dom0, and the per-domain output log `xl console` replays.
//!
//! The ring page is shared with a guest that may write anything at any time, so the
//! backend reads each index once, works on those copies, masks every index with the
//! ring size, and treats a producer more than a ring ahead of the consumer as a broken
//! ring (XSA-155): it consumes nothing from it.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// Bytes the consumer may read, from index copies: `None` if the guest's producer is
/// more than `size` ahead (corrupt ring).
pub fn readable(cons: u32, prod: u32, size: u32) -> Option<u32> {
    let n = prod.wrapping_sub(cons);
    (n <= size).then_some(n)
}

/// Bytes the producer may write: `None` if the guest's consumer index is inconsistent.
pub fn writable(cons: u32, prod: u32, size: u32) -> Option<u32> {
    let used = prod.wrapping_sub(cons);
    (used <= size).then(|| size - used)
}

/// Position of index `idx` in a ring of `size` bytes (a power of two).
pub const fn mask(idx: u32, size: u32) -> usize {
    (idx & (size - 1)) as usize
}

/// The last `cap` bytes a guest printed.
#[derive(Debug, Clone)]
pub struct OutputLog {
    buf: VecDeque<u8>,
    cap: usize,
}

impl OutputLog {
    /// An empty log keeping `cap` bytes.
    pub fn new(cap: usize) -> OutputLog {
        OutputLog {
            buf: VecDeque::new(),
            cap,
        }
    }

    /// Appends, dropping the oldest bytes beyond the capacity.
    pub fn push(&mut self, bytes: &[u8]) {
        let bytes = match bytes.len().checked_sub(self.cap) {
            Some(skip) => bytes.get(skip..).unwrap_or(&[]),
            None => bytes,
        };
        let over = (self.buf.len() + bytes.len()).saturating_sub(self.cap);
        self.buf.drain(..over.min(self.buf.len()));
        self.buf.extend(bytes);
    }

    /// Everything kept, oldest first.
    pub fn contents(&self) -> Vec<u8> {
        self.buf.iter().copied().collect()
    }

    /// Bytes kept.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices() {
        assert_eq!(readable(0, 0, 2048), Some(0));
        assert_eq!(readable(10, 20, 2048), Some(10));
        assert_eq!(readable(u32::MAX - 5, 4, 2048), Some(10));
        assert_eq!(readable(0, 2048, 2048), Some(2048));
        assert_eq!(readable(0, 2049, 2048), None);
        assert_eq!(readable(20, 10, 2048), None);
        assert_eq!(writable(0, 0, 1024), Some(1024));
        assert_eq!(writable(0, 1024, 1024), Some(0));
        assert_eq!(writable(5, 0, 1024), None);
        assert_eq!(mask(2049, 2048), 1);
        assert_eq!(mask(u32::MAX, 1024), 1023);
    }

    #[test]
    fn log_keeps_the_tail() {
        let mut l = OutputLog::new(8);
        assert!(l.is_empty());
        l.push(b"hello");
        l.push(b" world");
        assert_eq!(l.contents(), b"lo world");
        l.push(b"0123456789abc");
        assert_eq!(
            l.contents(),
            b"6789abc".iter().copied().fold(vec![b'5'], |mut v, b| {
                v.push(b);
                v
            })
        );
        assert_eq!(l.len(), 8);
    }
}
