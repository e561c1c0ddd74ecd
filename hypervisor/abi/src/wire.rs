//! Safe byte encoding of ABI structs, for the C unions of `domctl` and `sysctl`.
//!
//! Xen's `struct xen_domctl` and `struct xen_sysctl` end in a 128-byte union of sub-op
//! structs. This crate forbids `unsafe` and keeps Rust unions out of the ABI, so such a
//! union is an [`Opaque`] byte block, aligned as the C union is, and a sub-op struct is
//! put into it or taken out of it field by field through [`Wire`], at the offsets
//! `offset_of!` gives. Both directions are safe, allocation-free and total: a payload
//! larger than the union is a compile-time error, not a runtime one.
//!
//! Integers are encoded little-endian (x86's order, which is what Xen reads).

use core::mem::size_of;

/// A `#[repr(C)]` struct of integers that can be written to and read from bytes.
///
/// Implemented for the integer types, arrays of `Wire` types, and (through the
/// crate-private `wire!` macro) for each ABI struct that lives in a union.
pub trait Wire: Copy {
    /// Write `self` into `out[..size_of::<Self>()]`. Bytes between fields are left as
    /// they were. Callers guarantee `out.len() >= size_of::<Self>()`.
    fn put(&self, out: &mut [u8]);
    /// Read a value from `b[..size_of::<Self>()]`. Callers guarantee
    /// `b.len() >= size_of::<Self>()`.
    fn get(b: &[u8]) -> Self;
}

macro_rules! wire_int {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            fn put(&self, out: &mut [u8]) {
                out[..size_of::<$t>()].copy_from_slice(&self.to_le_bytes());
            }
            fn get(b: &[u8]) -> Self {
                let mut a = [0u8; size_of::<$t>()];
                a.copy_from_slice(&b[..size_of::<$t>()]);
                <$t>::from_le_bytes(a)
            }
        }
    )*};
}
wire_int!(u8, u16, u32, u64, i8, i16, i32, i64);

impl<T: Wire, const N: usize> Wire for [T; N] {
    fn put(&self, out: &mut [u8]) {
        for (i, v) in self.iter().enumerate() {
            v.put(&mut out[i * size_of::<T>()..]);
        }
    }
    fn get(b: &[u8]) -> Self {
        core::array::from_fn(|i| T::get(&b[i * size_of::<T>()..]))
    }
}

/// `wire!(Type { field, field, ... })`: implement [`Wire`] for a `#[repr(C)]` struct.
/// Every field must be listed (the struct literal in `get` makes a missing one a compile
/// error), pad fields included.
macro_rules! wire {
    ($t:ty { $($f:ident),* $(,)? }) => {
        impl $crate::wire::Wire for $t {
            fn put(&self, out: &mut [u8]) {
                $( $crate::wire::Wire::put(&self.$f, &mut out[core::mem::offset_of!($t, $f)..]); )*
            }
            fn get(b: &[u8]) -> Self {
                Self { $( $f: $crate::wire::Wire::get(&b[core::mem::offset_of!($t, $f)..]), )* }
            }
        }
    };
}
pub(crate) use wire;

/// `N` bytes aligned to 8, as a C union holding `uint64_aligned_t` members is.
///
/// [`Opaque::set`] zeroes the block then writes a payload; [`Opaque::get`] reads one.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opaque<const N: usize>(pub [u8; N]);

impl<const N: usize> Default for Opaque<N> {
    fn default() -> Self {
        Self([0; N])
    }
}

impl<const N: usize> Opaque<N> {
    /// All zeroes.
    pub const ZERO: Self = Self([0; N]);

    /// A block holding `v` (the rest zero).
    pub fn of<T: Wire>(v: &T) -> Self {
        let mut o = Self::ZERO;
        o.set(v);
        o
    }

    /// Zero the block, then encode `v` at its start.
    pub fn set<T: Wire>(&mut self, v: &T) {
        const { assert!(size_of::<T>() <= N, "payload larger than the union") };
        self.0 = [0; N];
        v.put(&mut self.0);
    }

    /// Decode a `T` from the start of the block.
    pub fn get<T: Wire>(&self) -> T {
        const { assert!(size_of::<T>() <= N, "payload larger than the union") };
        T::get(&self.0)
    }
}

/// An `Opaque` nested in a struct (a union inside a sub-op) is copied as bytes.
impl<const N: usize> Wire for Opaque<N> {
    fn put(&self, out: &mut [u8]) {
        out[..N].copy_from_slice(&self.0);
    }
    fn get(b: &[u8]) -> Self {
        let mut o = Self::ZERO;
        o.0.copy_from_slice(&b[..N]);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    struct T {
        a: u16,
        _pad: u16,
        b: u32,
        c: u64,
        d: [u8; 3],
        e: i8,
        f: i32,
    }
    wire!(T {
        a,
        _pad,
        b,
        c,
        d,
        e,
        f
    });

    #[test]
    fn round_trip_and_layout() {
        let t = T {
            a: 0x1122,
            _pad: 0,
            b: 0x3344_5566,
            c: 0x0102_0304_0506_0708,
            d: [9, 10, 11],
            e: -2,
            f: -3,
        };
        let o = Opaque::<32>::of(&t);
        assert_eq!(&o.0[..4], &[0x22, 0x11, 0, 0]);
        assert_eq!(&o.0[4..8], &[0x66, 0x55, 0x44, 0x33]);
        assert_eq!(o.0[16..19], [9, 10, 11]);
        assert_eq!(o.0[19], 0xfe);
        assert_eq!(o.0[24..32], [0; 8], "bytes past the payload are zero");
        assert_eq!(o.get::<T>(), t);
        assert_eq!(core::mem::align_of::<Opaque<16>>(), 8);
    }
}
