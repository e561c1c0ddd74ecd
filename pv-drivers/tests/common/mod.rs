//! Models shared by the integration tests: an in-memory disk and grant table.
#![allow(dead_code)]

use std::collections::BTreeMap;

use pv_drivers::blkif::{Disk, DiskError, GrantError, Grants};
use xen_abi::grant_table::GrantRef;
use xen_abi::DomId;

/// One thing the disk was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskOp {
    Read(u64, usize),
    Write(u64, Vec<u8>),
    Flush,
    Discard(u64, u64, bool),
}

/// A disk in memory that logs every operation.
#[derive(Clone, Debug)]
pub struct MemDisk {
    pub data: Vec<u8>,
    pub sector_size: u32,
    pub read_only: bool,
    pub discard: bool,
    pub fail_io: bool,
    pub log: Vec<DiskOp>,
}

impl MemDisk {
    pub fn new(bytes: usize, sector_size: u32) -> Self {
        // A recognisable pattern, made once (debug builds are slow at byte loops).
        static PATTERN: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let p = PATTERN.get_or_init(|| {
            (0..4 << 20)
                .map(|i: usize| (i * 7 + i / 512) as u8)
                .collect()
        });
        let data = if bytes <= p.len() {
            p[..bytes].to_vec()
        } else {
            (0..bytes).map(|i| (i * 7 + i / 512) as u8).collect()
        };
        Self {
            data,
            sector_size,
            read_only: false,
            discard: true,
            fail_io: false,
            log: Vec::new(),
        }
    }
}

impl Disk for MemDisk {
    fn sectors(&self) -> u64 {
        self.data.len() as u64 / 512
    }
    fn sector_size(&self) -> u32 {
        self.sector_size
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.log.push(DiskOp::Read(offset, buf.len()));
        if self.fail_io {
            return Err(DiskError::Io);
        }
        let o = offset as usize;
        buf.copy_from_slice(&self.data[o..o + buf.len()]);
        Ok(())
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        assert!(!self.read_only, "write reached a read-only disk");
        self.log.push(DiskOp::Write(offset, data.to_vec()));
        if self.fail_io {
            return Err(DiskError::Io);
        }
        let o = offset as usize;
        self.data[o..o + data.len()].copy_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        self.log.push(DiskOp::Flush);
        if self.fail_io {
            return Err(DiskError::Io);
        }
        Ok(())
    }
    fn discard(&mut self, offset: u64, len: u64, secure: bool) -> Result<(), DiskError> {
        self.log.push(DiskOp::Discard(offset, len, secure));
        if !self.discard {
            return Err(DiskError::Unsupported);
        }
        let o = offset as usize;
        self.data[o..o + len as usize].fill(0);
        Ok(())
    }
}

/// One granted frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub data: Vec<u8>,
    pub readonly: bool,
}

/// The grant table of one frontend domain, in memory.
#[derive(Clone, Debug, Default)]
pub struct MemGrants {
    pub domid: DomId,
    pub frames: BTreeMap<GrantRef, Frame>,
}

impl MemGrants {
    pub fn new(domid: DomId) -> Self {
        Self {
            domid,
            frames: BTreeMap::new(),
        }
    }
    pub fn grant(&mut self, gref: GrantRef, data: Vec<u8>, readonly: bool) {
        assert_eq!(data.len(), 4096);
        self.frames.insert(gref, Frame { data, readonly });
    }
    fn frame(&mut self, domid: DomId, gref: GrantRef) -> Result<&mut Frame, GrantError> {
        if domid != self.domid {
            return Err(GrantError(-2));
        }
        self.frames.get_mut(&gref).ok_or(GrantError(-3))
    }
}

impl Grants for MemGrants {
    fn copy_from(
        &mut self,
        domid: DomId,
        gref: GrantRef,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<(), GrantError> {
        assert!(offset + buf.len() <= 4096, "copy outside one frame");
        let f = self.frame(domid, gref)?;
        buf.copy_from_slice(&f.data[offset..offset + buf.len()]);
        Ok(())
    }
    fn copy_to(
        &mut self,
        domid: DomId,
        gref: GrantRef,
        offset: usize,
        data: &[u8],
    ) -> Result<(), GrantError> {
        assert!(offset + data.len() <= 4096, "copy outside one frame");
        let f = self.frame(domid, gref)?;
        if f.readonly {
            return Err(GrantError(-8));
        }
        f.data[offset..offset + data.len()].copy_from_slice(data);
        Ok(())
    }
}
